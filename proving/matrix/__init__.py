"""The compatibility matrix (``make matrix``): real gateways in front of the reference server, requirement x product.

One job per module: ``cells`` (the runs, cells and attribution as values, pure), ``products`` (install and start
each product on loopback), ``harness`` (run the suite through one product, store the run), ``render`` (Markdown
and HTML). Not in the wheel; ``modmsg`` never imports it.
"""

// Preloaded by `make gateway-demo` (node --require): the Portkey gateway calls serve({fetch, port}) without a
// hostname, so it would listen on every interface, and it has no option to change that. This makes a listen()
// that names a port but no host bind to 127.0.0.1 instead; the demo then checks that nothing listens elsewhere.
"use strict";
const net = require("node:net");

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function listenOnLoopback(...args) {
  if (typeof args[0] === "number" && (args.length === 1 || typeof args[1] === "function" || args[1] == null)) {
    const rest = args[1] == null ? args.slice(2) : args.slice(1);
    return listen.call(this, args[0], "127.0.0.1", ...rest);
  }
  return listen.apply(this, args);
};

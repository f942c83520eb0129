// Banner of dist/bundle/snapshot.cjs (scripts/bundle.sh), the startup-snapshot builder script
// (src/cli/snapshot.ts, scripts/build-snapshot.sh). At build time `node --build-snapshot` gives it a
// `require` for Node's built-ins only, and node:http, node:https, node:http2 and node:tls cannot be
// loaded then (their native state is not serializable: the build aborts). grpc-js requires them at
// its top level but reads only http2.constants there, so while the snapshot is built those four
// are deferred: a stand-in whose properties are the real module's once the process runs (the
// constants come from a JSON file of the building node, $CINDER_CSI_SNAPSHOT_H2C). Anything else
// read from them at build time fails the build. After the start every require is the real one.
// @kubernetes/client-node (exec-plugin kubeconfigs only) is not in the snapshot: it is the ESM
// bundle's client-node.js entry, loaded with require(esm) (import() is not available in a snapshot).
// import.meta.url (esbuild --define) is this file's URL: the blob must be built where it runs.
var __csiUrl = require('node:url').pathToFileURL(__filename).href;
var __csiRequire = require;
var __csiSnapshot = __csiRequire('node:v8').startupSnapshot;
var __csiDeferred = {};
var __csiH2Constants;
// biome-ignore lint/suspicious/noGlobalAssign: the builder's require, wrapped for the bundle below
require = (id) => {
  var name = id.startsWith('node:') ? id.slice(5) : id;
  if (name === '@kubernetes/client-node')
    return __csiRequire('node:module').createRequire(__filename)('./client-node.js');
  if (!__csiSnapshot.isBuildingSnapshot() || !['http', 'https', 'http2', 'tls'].includes(name))
    return __csiRequire(id);
  __csiDeferred[name] ??= new Proxy(
    {},
    {
      get: (_, key) => {
        if (!__csiSnapshot.isBuildingSnapshot()) return __csiRequire('node:' + name)[key];
        if (name === 'http2' && key === 'constants') {
          __csiH2Constants ??= JSON.parse(
            __csiRequire('node:fs').readFileSync(process.env.CINDER_CSI_SNAPSHOT_H2C, 'utf8'),
          );
          return __csiH2Constants;
        }
        throw new Error('startup snapshot: node:' + name + '.' + String(key) + ' read while building');
      },
      has: (_, key) => key in __csiRequire('node:' + name),
    },
  );
  return __csiDeferred[name];
};

/**
 * Entry of the startup-snapshot build (scripts/build-snapshot.sh): evaluated once, at build time,
 * by `node --build-snapshot`; the started process resumes from the heap it left and runs the CLI.
 * Everything imported here is evaluated at build time, so no module may capture the environment,
 * the clock, a random value or an OS handle at its top level.
 */
import { startupSnapshot } from 'node:v8';
import * as app from './app.ts';
import { runCli } from './cli.ts';
import '../config/index.ts';
import '../openstack/session.ts';
import '../openstack/cinder.ts';
import '../csi/identity.ts';
import '../grpc/server.ts';
import '../grpc/redact.ts';
import { sharedCsiRoot } from '../grpc/proto.ts';
import '../grpc/limits.ts';
import '../csi/cloud-errors.ts';
import '../host/exec.ts';
import '../host/paths.ts';
import '../host/lock.ts';
import '../host/connector-factory.ts';
import '../host/host-connector.ts';
import '../csi/node/index.ts';
import '../kube/node-side.ts';
import '../csi/controller/index.ts';
import '../csi/group-controller/index.ts';
import '../csi/connector-source.ts';
import '../kube/index.ts';

// Work that depends on nothing of the start, done once here: the CSI reflection root.
sharedCsiRoot();

startupSnapshot.setDeserializeMainFunction(() => {
  // Started from a blob there is no script: Node 24 gives argv = [node, ...args]; later versions
  // repeat argv[0] in argv[1], as for a script.
  const args = process.argv.slice(1);
  if (args[0] === process.argv[0]) args.shift();
  runCli(args, async () => app);
});

#!/usr/bin/env node
import { enableCompileCache } from 'node:module';
import { buildInfo } from '../util/build-info.ts';
import { FlagError, parseFlags, usage } from './flags.ts';

/** Entry point: parse flags (exit 2 on a bad command line), then run the driver until a signal. */
async function main(): Promise<number> {
  let request: ReturnType<typeof parseFlags>;
  try {
    request = parseFlags(process.argv.slice(2));
  } catch (err) {
    if (err instanceof FlagError) {
      process.stderr.write(`cinder-csi: ${err.message} (see --help)\n`);
      return 2;
    }
    throw err;
  }
  if (request.kind === 'help') {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  if (request.kind === 'version') {
    const info = buildInfo();
    process.stdout.write(
      `${info.name} ${info.version}${info.commit ? ` (${info.commit.slice(0, 12)})` : ''}\n`,
    );
    return 0;
  }
  // Cache compiled code between starts (a node plugin restarts often); silently off when the
  // cache directory is not writable (read-only root filesystem without a tmpfs).
  enableCompileCache?.(process.env['CINDER_CSI_COMPILE_CACHE']);
  const { runDriver } = await import('./app.ts');
  return runDriver(request.flags);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`cinder-csi: fatal: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);

import { enableCompileCache } from 'node:module';
import { buildInfo } from '../util/build-info.ts';
import { FlagError, parseFlags, usage } from './flags.ts';

/**
 * The program: parse flags (exit code 2 on a bad command line), then run the driver until a
 * signal. `loadApp` imports src/cli/app.ts (main.ts: lazily; the startup snapshot: preloaded).
 */
export async function cliMain(
  argv: string[],
  loadApp: () => Promise<typeof import('./app.ts')>,
): Promise<number> {
  let request: ReturnType<typeof parseFlags>;
  try {
    request = parseFlags(argv);
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
  const { runDriver } = await loadApp();
  return runDriver(request.flags);
}

/** Runs cliMain and sets the process's exit code from it. */
export function runCli(argv: string[], loadApp: () => Promise<typeof import('./app.ts')>): void {
  cliMain(argv, loadApp).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`cinder-csi: fatal: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

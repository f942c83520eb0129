#!/usr/bin/env node
import { runCli } from './cli.ts';

/** Entry point (the tsc build and the ESM bundle): the driver's modules load as a mode needs them. */
runCli(process.argv.slice(2), () => import('./app.ts'));

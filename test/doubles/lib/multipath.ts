/**
 * multipath / multipathd double (see multipathd.ts for the map model). Supported:
 *   multipath -f NAME            flush (remove) a map
 *   multipath -ll                list maps
 *   multipathd resize map NAME   "ok" for a known map
 */
import path from 'node:path';
import { die, main, record, withStateLock } from './common.ts';
import { flushMap, loadMaps } from './multipathd.ts';

main(() => {
  const tool = process.env.CSI_DOUBLE_TOOL === 'multipathd' ? 'multipathd' : 'multipath';
  const argv = process.argv.slice(2);
  record(tool, argv);
  withStateLock(() => {
    if (tool === 'multipathd') {
      const name = argv[2] ?? '';
      if (argv[0] !== 'resize' || argv[1] !== 'map')
        die(1, `multipathd: unsupported command: ${argv.join(' ')}`);
      if (!loadMaps().some((m) => m.name === name || m.dm === name)) die(1, 'fail');
      process.stdout.write('ok\n');
      return;
    }
    if (argv[0] === '-f') {
      const name = argv[1] ?? die(1, 'multipath: -f needs a map name');
      if (!flushMap(name)) die(1, `${name}: map not present`);
      return;
    }
    if (argv[0] === '-ll') {
      for (const m of loadMaps()) {
        process.stdout.write(`${m.name} ${m.dm} paths: ${m.paths.map((p) => path.basename(p)).join(' ')}\n`);
      }
      return;
    }
    die(1, `multipath: unsupported arguments: ${argv.join(' ')}`);
  });
});

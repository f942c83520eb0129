/**
 * The hostile values the request generator (generate.ts) draws from: ids that name other Cinder
 * URLs or paths, strings that break parsers, bounds and encodings, int64 extremes, mount flags and
 * parameter entries. Every pick goes through the seeded Prng, so a seed replays the same values.
 */
import type { Prng } from './prng.ts';

export const INT64_MIN = '-9223372036854775808';
export const INT64_MAX = '9223372036854775807';
const MB = 1024 * 1024;

/** Ids that name other Cinder URLs or walk the URL path. */
export const URL_IDS = [
  'detail',
  'summary',
  'backup:detail',
  'backup:summary',
  'backup:',
  'backup:../x',
  '../',
  '..',
  '.',
  '%2f',
  '%2F..%2Fvolumes',
  'a/b',
  '../volumes/detail',
  '?all_tenants=1',
  'x#y',
  'detail?limit=1',
  'default',
  'os-volume-transfer',
  'capabilities',
];
/** Ids shaped like paths. */
export const PATH_IDS = ['/etc/passwd', '../../etc/passwd', '/', '//', 'a\\b', '~root', './x'];

export function hostileStrings(r: Prng): string {
  return r.pick([
    '',
    ' ',
    'a'.repeat(128),
    'a'.repeat(129),
    'é'.repeat(65),
    'x'.repeat(MB),
    'a\0b',
    '\0',
    '\ud800',
    'a\udfffb',
    '😀'.repeat(40),
    'a\r\nX-Injected: 1',
    '\u202e\u0000\u001b[31m',
    "' OR 1=1 --",
    '$' + '{jndi:ldap://x}',
    '-rf',
    '--help',
    '-o remount,rw',
    'defaults,bind',
    '%s%s%n',
    String(r.int(1e9)),
    ...URL_IDS,
    ...PATH_IDS,
  ]);
}

/** Mount flags that change what or where mount(8) mounts, or are malformed or too large. */
export function hostileMountFlags(r: Prng): string[] {
  return r.pick([
    ['defaults,bind'],
    ['bind'],
    ['rbind'],
    ['ro,remount'],
    ['remount'],
    ['move'],
    ['x'.repeat(4097)],
    Array.from({ length: 40 }, () => 'y'.repeat(110)),
    ['a\0b'],
    [''],
    [' '],
    ['noexec', 'defaults , bind'],
    ['-o', 'bind'],
    [hostileStrings(r)],
  ]);
}

/** A hostile key/value of a parameters-like map (StorageClass parameters, contexts...). */
export function hostileKeyValue(r: Prng): [string, string] {
  return r.pick([
    () => [hostileStrings(r), 'v'],
    () => ['k', hostileStrings(r)],
    () => ['big', 'v'.repeat(5000)],
    () => ['fsType', 'ext4'],
    () => ['unknown-parameter', 'x'],
    () => ['type', r.pick(URL_IDS)],
    () => ['availability', r.pick(URL_IDS)],
    () => ['imageRef', r.pick([...URL_IDS, r.uuid()])],
    () => ['schedulerHints', r.pick(['different_host=detail', '{"x":', 'a=b,=,', '{"a":{"b":1}}'])],
    () => ['metadata', r.pick(['a=b,c', `${'k'.repeat(300)}=v`, '{"cinder.csi.dev/cluster":"x"}', '[]'])],
    () => ['migrationPolicy', r.pick(['always', '', 'on-demand'])],
    () => ['attachment_id', r.pick([...URL_IDS, r.uuid(), ''])],
    () => ['force', r.pick(['maybe', 'TRUE', ''])],
  ])() as [string, string];
}

/**
 * Value checks shared by every configuration source. Each throws a `ConfigError` that names where
 * the value came from and what is wrong with it, and never repeats the value itself (a secret may
 * have been typed into the wrong key). File paths are the one exception: a path is not a secret
 * and the operator needs it to fix the problem.
 */
import { accessSync, constants, statSync } from 'node:fs';
import type { Setting } from './settings.ts';
import { ConfigError } from './types.ts';

export function configError(where: string, problem: string): ConfigError {
  return new ConfigError(`${where}: ${problem}`);
}

const TRUE_WORDS = new Set(['true', '1', 'yes']);
const FALSE_WORDS = new Set(['false', '0', 'no']);

export function parseBool(s: Setting): boolean {
  const v = s.value.trim().toLowerCase();
  if (TRUE_WORDS.has(v)) return true;
  if (FALSE_WORDS.has(v)) return false;
  throw configError(s.where, 'not a boolean (use true/false, 1/0 or yes/no)');
}

export function parsePositiveInt(s: Setting): number {
  const v = s.value.trim();
  const n = /^[0-9]+$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw configError(s.where, 'not a positive integer');
  return n;
}

const NOT_A_URL = 'not a valid URL (expected http:// or https:// with a host)';

/** An absolute http(s) URL with a host. Returned as written (trailing slash removed). */
export function parseHttpUrl(s: Setting): string {
  const v = s.value.trim();
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw configError(s.where, NOT_A_URL);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    throw configError(s.where, NOT_A_URL);
  }
  if (url.username !== '' || url.password !== '') {
    throw configError(s.where, 'must not contain credentials');
  }
  return v.replace(/\/+$/, '');
}

/** public | internal | admin, also in the Keystone v2 spelling publicURL/internalURL/adminURL. */
export function parseInterface(s: Setting): 'public' | 'internal' | 'admin' {
  const v = s.value.trim().toLowerCase().replace(/url$/, '');
  if (v === 'public' || v === 'internal' || v === 'admin') return v;
  throw configError(s.where, 'not a valid endpoint interface (use public, internal or admin)');
}

/** A regular file this process can read; returns the path as given. */
export function checkReadableFile(s: Setting): string {
  const path = s.value;
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw configError(s.where, `file ${path} does not exist`);
    throw configError(s.where, `file ${path} cannot be accessed (${code ?? 'error'})`);
  }
  if (!isFile) throw configError(s.where, `${path} is not a regular file`);
  try {
    accessSync(path, constants.R_OK);
  } catch {
    throw configError(s.where, `file ${path} is not readable`);
  }
  return path;
}

/** Cinder's default `project_id_regex` is `[0-9a-f\-]+`: noauth project ids must match it. */
const CINDER_PROJECT_ID = /^[0-9a-f-]+$/;

export function checkNoauthProjectId(s: Setting): string {
  const v = s.value.trim();
  if (!CINDER_PROJECT_ID.test(v)) {
    throw configError(
      s.where,
      "not a valid noauth project id (Cinder's project_id_regex allows lowercase hex digits and '-' only)",
    );
  }
  return v;
}

/** The noauth token is `user_id:project_id`, so the user id cannot contain a colon. */
export function checkNoauthUserId(s: Setting): string {
  const v = s.value.trim();
  if (v.includes(':') || /\s/.test(v)) {
    throw configError(s.where, "not a valid noauth user id (no ':' or whitespace allowed)");
  }
  return v;
}

/** A parsed `--endpoint`: unix:///abs/path.sock or tcp://host:port. */
export type Endpoint = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export function parseEndpoint(value: string): Endpoint {
  if (value.startsWith('unix://')) {
    const path = value.slice('unix://'.length);
    if (!path.startsWith('/'))
      throw new Error(`endpoint ${value}: unix socket path must be absolute (unix:///path)`);
    if (path.length > 107) throw new Error(`endpoint ${value}: unix socket path longer than 107 bytes`);
    return { kind: 'unix', path };
  }
  if (value.startsWith('/')) return { kind: 'unix', path: value };
  if (value.startsWith('tcp://')) {
    const rest = value.slice('tcp://'.length);
    const m = /^(\[[^\]]+\]|[^:/]+):(\d{1,5})$/.exec(rest);
    if (!m) throw new Error(`endpoint ${value}: expected tcp://host:port`);
    const port = Number(m[2]);
    if (port > 65535) throw new Error(`endpoint ${value}: port out of range`);
    return { kind: 'tcp', host: m[1]!.replace(/^\[|\]$/g, ''), port };
  }
  throw new Error(`endpoint ${value}: expected unix:///path or tcp://host:port`);
}

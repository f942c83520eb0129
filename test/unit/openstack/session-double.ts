/**
 * A minimal `ServiceSession` over undici for the Cinder client's unit tests against a local HTTP
 * server (URL join, query, JSON body, Cinder's error mapping): what the real session does, minus
 * auth, retries and logging. The lab tests use the real one.
 */
import { request as undiciRequest } from 'undici';
import { OpenStackError, parseFaultMessage } from '../../../src/openstack/errors.ts';
import type { ServiceSession } from '../../../src/openstack/session.ts';

export function sessionDouble(endpoint: string, projectId: string): ServiceSession {
  return {
    service: 'block-storage',
    endpoint: async () => endpoint,
    projectId: async () => projectId,
    async request<T>(req: Parameters<ServiceSession['request']>[0]) {
      const url = new URL(/^https?:/.test(req.path) ? req.path : endpoint + req.path);
      for (const [k, v] of Object.entries(req.query ?? {}))
        if (v !== undefined) url.searchParams.set(k, String(v));
      const res = await undiciRequest(url, {
        method: req.method,
        headers: {
          ...req.headers,
          ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: req.body !== undefined ? JSON.stringify(req.body) : undefined,
        signal: req.signal,
      });
      const text = await res.body.text();
      const body = text ? JSON.parse(text) : undefined;
      if (res.statusCode >= 400) {
        throw new OpenStackError({
          status: res.statusCode,
          faultMessage: parseFaultMessage(body, res.statusCode),
          method: req.method,
          url: url.toString(),
        });
      }
      return {
        status: res.statusCode,
        headers: {},
        body: body as T,
        requestId: undefined,
        url: url.toString(),
      };
    },
  } as ServiceSession;
}

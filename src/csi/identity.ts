import { failedPrecondition } from './errors.ts';
import type { PluginCapability } from './generated/csi/v1/index.ts';
import type { ControllerService, GroupControllerService, IdentityService } from './services.ts';

export interface Readiness {
  ready: boolean;
  /** Why not ready (logged and, when unhealthy, returned as FAILED_PRECONDITION). */
  reason?: string;
  /** true: a broken state the operator must fix (bad config), not warming up. */
  unhealthy?: boolean;
}

export interface IdentityOptions {
  driverName: string;
  version: string;
  commit?: string;
  controller?: ControllerService;
  groupController?: GroupControllerService;
  /** Real readiness: config loaded and (controller) the cloud reachable recently. */
  readiness: () => Promise<Readiness>;
}

/**
 * The Identity service. Capabilities are derived from the services actually wired in, so the
 * driver never advertises what it does not implement.
 */
export function createIdentityService(opts: IdentityOptions): IdentityService {
  const capabilities: PluginCapability[] = [];
  if (opts.controller) {
    capabilities.push({ service: { type: 'CONTROLLER_SERVICE' } });
    capabilities.push({ service: { type: 'VOLUME_ACCESSIBILITY_CONSTRAINTS' } });
    if (opts.controller.ControllerExpandVolume) {
      capabilities.push({ volume_expansion: { type: 'ONLINE' } });
    }
  }
  if (opts.groupController?.CreateVolumeGroupSnapshot) {
    capabilities.push({ service: { type: 'GROUP_CONTROLLER_SERVICE' } });
  }
  const manifest: Record<string, string> = {};
  if (opts.commit) manifest['commit'] = opts.commit;

  return {
    async GetPluginInfo() {
      return { name: opts.driverName, vendor_version: opts.version, manifest };
    },
    async GetPluginCapabilities() {
      return { capabilities };
    },
    async Probe(_req, ctx) {
      const r = await opts.readiness();
      if (!r.ready && r.unhealthy) throw failedPrecondition(`not ready: ${r.reason ?? 'unhealthy'}`);
      if (!r.ready) ctx.log.info({ reason: r.reason }, 'probe: not ready yet');
      return { ready: { value: r.ready } };
    },
  };
}

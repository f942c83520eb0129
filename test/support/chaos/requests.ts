/** CSI requests the chaos workload and the chaos lab tests send the driver process (plain objects). */

export const GiB = 1024 ** 3;

/** A mounted ext4, single-node-writer volume capability. */
export const mountCapability = () => ({
  mount: { fs_type: 'ext4', mount_flags: [], volume_mount_group: '' },
  access_mode: { mode: 'SINGLE_NODE_WRITER' },
});

/** CreateVolume of 1 GiB of volume type `type`, optionally from a content source. */
export function createVolumeRequest(name: string, type: string, source?: Record<string, unknown>) {
  return {
    name,
    capacity_range: { required_bytes: String(GiB), limit_bytes: '0' },
    volume_capabilities: [mountCapability()],
    parameters: { type },
    secrets: {},
    ...(source ? { volume_content_source: source } : {}),
  };
}

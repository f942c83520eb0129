"""Local attach for the lab's own cinder-backup service.

cinder-backup reads and writes volume data by attaching the volume on its own host through
os-brick, using the protocol of the volume's connection_info. For the iSCSI-shaped backends
(fake, tgt) that needs an iSCSI initiator (iscsiadm + kernel), which the lab host does not have.
The lab therefore runs cinder-backup with its own ``my_ip`` (``lab_local_attach_ip``, default
127.0.0.2; the volume and API services keep 127.0.0.1): a connector with that ip gets a
``local`` connection_info pointing at the backend's file (os-brick LocalConnector), any other
connector (CSI node plugins, tests) keeps the normal iSCSI connection_info.
"""
from oslo_config import cfg

local_attach_opts = [
    cfg.StrOpt('lab_local_attach_ip', default='127.0.0.2',
               help='Connector ip (my_ip of the lab cinder-backup service) that gets a '
                    '"local" connection_info (the backend file) instead of iSCSI. '
                    'Empty: never.'),
]
cfg.CONF.register_opts(local_attach_opts, group='backend_defaults')


def wants_local(configuration, connector):
    """True when ``connector`` is the lab's cinder-backup host (see module doc)."""
    ip = configuration.safe_get('lab_local_attach_ip')
    return bool(ip) and isinstance(connector, dict) and connector.get('ip') == ip


def local_connection(path):
    """connection_info for os-brick's LocalConnector: the file itself is the device."""
    return {'driver_volume_type': 'local', 'data': {'device_path': path}}

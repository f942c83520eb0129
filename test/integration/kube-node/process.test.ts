/** The end-to-end suite on the lab kubelet with the node plugin as a host process (suite.ts). */
import { kubeNodeSuite } from './suite.ts';

kubeNodeSuite('process');

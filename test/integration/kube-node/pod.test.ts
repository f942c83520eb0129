/** The end-to-end suite on the lab kubelet with the node plugin as a pod of the project's image (suite.ts). */
import { kubeNodeSuite } from './suite.ts';

kubeNodeSuite('pod');

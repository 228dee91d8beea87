// The ApprovalStore conformance suite on the reference store,
// MemoryApprovalStore: the suite's own check (every test it states holds for
// the reference).
import { MemoryApprovalStore } from '../../wasm/index.js';
import { approvalConformance } from './approval-conformance.js';

approvalConformance('MemoryApprovalStore', () => new MemoryApprovalStore());

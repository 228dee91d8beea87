// The CounterStore conformance suite on the reference store, MemoryCounterStore:
// the suite's own check (every test it states holds for the reference).
import { MemoryCounterStore } from '../../wasm/index.js';
import { conformance } from './store-conformance.js';

conformance('MemoryCounterStore', () => new MemoryCounterStore());

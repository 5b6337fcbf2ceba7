import { MemoryStore } from '../../src/store/memory.js';
import { runStoreContract } from './contract.js';

runStoreContract('memory', {
  open: async () => {
    const s = new MemoryStore();
    await s.open();
    return s;
  },
});

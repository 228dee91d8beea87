// The smallest worker: the baseline for workerd's own startup and request cost.
export default {
  async fetch() {
    return Response.json({ mode: 'empty' });
  },
};

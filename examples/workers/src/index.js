// The toolgate proxy on Cloudflare Workers, from the installed package: its
// fetch handler and the two Durable Object classes that wrangler.toml binds
// (a Worker must export the classes of its Durable Objects from its main module).
export { default, ToolgateApprovals, ToolgateCounters } from 'toolgate/workers';

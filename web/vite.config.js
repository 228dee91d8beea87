// The playground pages: index.html (full playground) and embed.html (two
// compact components on one page). Everything is static: `base: './'` makes
// the output work from any path.
import path from 'node:path';
import { defineConfig } from 'vite';
import { playgroundPlugin, repoRoot, webRoot } from './vite.shared.js';

export default defineConfig({
  root: webRoot,
  base: './',
  plugins: [playgroundPlugin()],
  server: { fs: { allow: [repoRoot] } },
  build: {
    outDir: path.join(webRoot, 'dist'),
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0, // the .wasm stays a file (streaming compile, cached)
    rollupOptions: {
      input: {
        index: path.join(webRoot, 'index.html'),
        embed: path.join(webRoot, 'embed.html'),
      },
    },
  },
});

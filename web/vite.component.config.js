// The component as one standalone ES module for one-tag embedding:
//   <script type="module" src=".../toolgate-playground.js"></script>
//   <toolgate-playground preset="refunds"></toolgate-playground>
// The .wasm is emitted to dist/assets/ and found relative to the module
// (import.meta.url), so the pair works from any static path.
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
    emptyOutDir: false, // runs after vite.config.js, beside the pages
    target: 'es2022',
    assetsInlineLimit: 0,
    copyPublicDir: false,
    rollupOptions: {
      input: { 'toolgate-playground': path.join(webRoot, 'src/toolgate-playground.js') },
      preserveEntrySignatures: 'exports-only',
      output: {
        format: 'es',
        entryFileNames: '[name].js',
        chunkFileNames: 'assets/component-[name]-[hash].js',
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
});

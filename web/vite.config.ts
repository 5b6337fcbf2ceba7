import { defineConfig } from 'vite';

// The dashboard is built into web/dist and served by the control plane; no CDN (machines are offline).
export default defineConfig({
  root: 'web',
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
});

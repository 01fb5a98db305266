/// <reference types="vitest/config" />
// Vite build of the dashboard. `npm run dev` proxies the API to a running
// `prescient dashboard` (PRESCIENT_DASHBOARD_URL, default http://127.0.0.1:8080),
// so development always talks to the real server, never to canned data.
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const target = process.env.PRESCIENT_DASHBOARD_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  server: {
    host: '127.0.0.1',
    proxy: {
      '/api': { target, changeOrigin: false },
      '/login': { target, changeOrigin: false },
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});

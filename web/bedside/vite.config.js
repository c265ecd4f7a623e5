// The bedside app is served by the bedcheck server under /bedside/; the build goes into the server package's
// static folder (ignored by git) so an installed server serves it without Node at run time.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/bedside/",
  build: {
    outDir: "../../server/bedside/static",
    emptyOutDir: true,
    target: "es2019",
    // The wasm runtime is copied beside the bundle (scripts/after-build.mjs), never inlined.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1024,
  },
});

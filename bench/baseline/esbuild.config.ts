/**
 * The naive reference bundle for the cold-start benchmark: the same entries and
 * dependencies as scripts/build.ts, bundled with esbuild's defaults for a Node ESM output
 * and nothing tuned: no minify, no target, no mainFields (so platform node picks the CommonJS
 * `main` builds of the AWS SDK and Powertools), no externals.
 *
 * One addition is not tuning but a condition for running at all: an ESM bundle of CommonJS
 * dependencies needs a real `require` for Node built-ins (the SDK's `require("http")` otherwise
 * throws "Dynamic require of "http" is not supported" at import). So the banner defines one,
 * as every ESM Lambda bundle of the SDK must.
 *
 * It is what "just bundle it" gives, so `baseline_cold_start_ratio` in bench/results.json
 * shows what the tuned build in scripts/build.ts buys.
 */
import type { BuildOptions } from 'esbuild';

export const REQUIRE_BANNER = "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);";

export function baselineOptions(overrides: BuildOptions = {}): BuildOptions {
  return {
    bundle: true,
    platform: 'node',
    format: 'esm',
    banner: { js: REQUIRE_BANNER },
    ...overrides,
  };
}

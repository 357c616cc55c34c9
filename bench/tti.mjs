// Time to interactive of one page in Chromium, for `cargo xtask bench` (bench/tenancy.sh).
//
// usage: node bench/tti.mjs <page url> <cookie header> [runs]
//
// Loads the page `runs` times, each in a fresh browser context (nothing cached), signed in with
// the cookie, and waits for the app's `tessera:hydrated` performance mark (frontend/src/lib.rs:
// set once the page's own code has arrived and hydrated). Prints one JSON line: the median and
// worst milliseconds from navigation start to that mark, and the WASM files the page fetched.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.resolve("end2end/package.json"));
const { chromium } = require("@playwright/test");

const [url, cookie, runs = "7"] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const times = [];
let wasm = [];
try {
  for (let run = 0; run < Number(runs); run++) {
    const context = await browser.newContext();
    const [name, ...value] = cookie.split("=");
    await context.addCookies([{ name, value: value.join("="), url }]);
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(() => performance.getEntriesByName("tessera:hydrated").length > 0, null, { timeout: 30_000 });
    const measured = await page.evaluate(() => ({
      at: performance.getEntriesByName("tessera:hydrated")[0].startTime,
      wasm: performance
        .getEntriesByType("resource")
        .filter((r) => new URL(r.name).pathname.endsWith(".wasm"))
        .map((r) => ({ path: new URL(r.name).pathname, transferred: r.encodedBodySize, size: r.decodedBodySize })),
    }));
    times.push(measured.at);
    wasm = measured.wasm;
    await context.close();
  }
} finally {
  await browser.close();
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({ median_ms: Math.round(times[times.length >> 1]), worst_ms: Math.round(times.at(-1)), wasm }));

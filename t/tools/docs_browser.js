#!/usr/bin/env node
// Opens the API documentation in headless Chromium (playwright-core) the
// way a person would: waits for Swagger UI to render, checks that every
// given module has its operations listed, runs "Try it out" on GET /health
// and saves a screenshot. Prints one JSON object with what it saw; exits
// non-zero when the page could not be driven.
//
//   node docs_browser.js BASE_URL OUT_DIR TAG_GROUPS_JSON
// TAG_GROUPS_JSON: {"core": ["health", "keys"], "auth": ["auth", ...], ...}
'use strict';

const path = require('path');
const { chromium } = require('playwright-core');

// Two animation frames: time for a scroll's re-render to reach the DOM.
function nextFrames(page) {
  return page.evaluate(() => new Promise((done) =>
    requestAnimationFrame(() => requestAnimationFrame(done))));
}

// The ids of every tag and operation block. Swagger UI virtualizes a list
// of 150 tags and operations or more (only what is near the viewport is
// in the DOM), so this scrolls down the page as a reader would.
async function operationIds(page) {
  const ids = new Set();
  for (;;) {
    for (const id of await page.$$eval('[id^="operations-"]', (els) => els.map((e) => e.id)))
      ids.add(id);
    const atBottom = await page.evaluate(() => {
      const before = window.scrollY;
      window.scrollBy(0, window.innerHeight * 0.75);
      return window.scrollY === before;
    });
    if (atBottom) return ids;
    await nextFrames(page);
  }
}

async function main() {
  const [base, outDir, groupsJson] = process.argv.slice(2);
  const groups = JSON.parse(groupsJson);
  const seen = { modules: {}, csp_violations: [], page_errors: [] };
  const browser = await chromium.launch({
    executablePath: process.env.BL_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update',
           '--disable-sync', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 2000 } });
    page.on('console', (msg) => {
      if (/Content Security Policy/i.test(msg.text())) seen.csp_violations.push(msg.text());
    });
    page.on('pageerror', (err) => seen.page_errors.push(String(err)));

    const response = await page.goto(base + '/docs/', { waitUntil: 'load' });
    seen.status = response.status();
    seen.csp = response.headers()['content-security-policy'] || null;
    await page.waitForSelector('.swagger-ui .opblock', { timeout: 20000 });
    seen.title = await page.locator('.swagger-ui .info .title').first().innerText();

    const ids = await operationIds(page);
    for (const [module, tags] of Object.entries(groups)) {
      let count = 0;
      for (const tag of tags) {
        if (ids.has(`operations-tag-${tag}`))
          count += [...ids].filter((id) => id.startsWith(`operations-${tag}-`)).length;
      }
      seen.modules[module] = count;
    }
    await page.evaluate(() => window.scrollTo(0, 0));
    await nextFrames(page);

    const health = page.locator('#operations-health-getHealth');
    await health.locator('.opblock-summary').click();
    await health.locator('button.try-out__btn').click();
    await health.locator('button.execute').click();
    const status = health.locator('.live-responses-table .response .response-col_status').first();
    await status.waitFor({ timeout: 15000 });
    seen.try_it_out_status = (await status.innerText()).trim();
    await page.screenshot({ path: path.join(outDir, 'docs.png'), fullPage: false });
    seen.screenshot = path.join(outDir, 'docs.png');
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(seen) + '\n');
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack || err) + '\n');
  process.exit(1);
});

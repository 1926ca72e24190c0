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

    for (const [module, tags] of Object.entries(groups)) {
      let count = 0;
      for (const tag of tags) {
        count += await page.locator(`#operations-tag-${tag}`).count() &&
                 await page.locator(`[id^="operations-${tag}-"]`).count();
      }
      seen.modules[module] = count;
    }

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

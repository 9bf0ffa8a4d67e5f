/**
 * The routing graph as a user meets it (issue 21): it is still there after a reload and while a
 * new run starts, a click on a box pins it, the keyboard walks and pins boxes, hovering never
 * moves the graph, routing.json downloads in the CLI's format. Then screenshots of the graph at
 * 8 and 32 shots and of teaching mode (e2e-artifacts/, copied to docs/screenshots by hand once
 * looked at).
 *
 * The model: e2e/model-fixture.ts (MOC_E2E_MODEL=public/models/moc-tiny for the shipped tiny model).
 */
import { readFileSync } from 'node:fs';
import { expect, test, type Page } from '@playwright/test';
import { BOARD, MODEL, hasModel, openWithBoard, serveModel, startLongRun, watchRun } from './model-fixture.ts';

const graph = (page: Page) => page.getByRole('region', { name: 'Routing graph' });
const chunk = (page: Page, name: string) => graph(page).getByRole('button', { name, exact: true });

/** Clicks the middle of a chunk's box on the canvas (the buttons over the boxes take no pointer events: the canvas hit-tests). */
async function clickBox(page: Page, name: string): Promise<void> {
  await chunk(page, name).scrollIntoViewIfNeeded();
  const box = (await chunk(page, name).boundingBox())!;
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
}

async function generate(page: Page, steps: number): Promise<void> {
  await page.getByRole('spinbutton', { name: 'Sampler steps' }).fill(String(steps));
  await page.getByRole('button', { name: 'Generate', exact: true }).click();
  await watchRun(page, steps);
}

test('the routing graph pins by click and keyboard, keeps still, survives a reload and a new run', async ({ page }) => {
  test.skip(!hasModel(), `no model folder at ${MODEL}`);
  test.setTimeout(300_000);
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.setViewportSize({ width: 1440, height: 900 }); // wide: the inspector sits beside the graph
  await serveModel(page);
  await openWithBoard(page);
  await generate(page, 2);

  const g = graph(page);
  await g.scrollIntoViewIfNeeded();
  await expect(g.locator('.routing-chunk')).toHaveCount(7); // global caption, 2 × (caption + 2 frames)
  const stage = g.locator('.routing-stage');

  // hovering a box opens the inspector beside the graph and moves nothing
  await chunk(page, 'Shot 2 · frame 2').scrollIntoViewIfNeeded();
  const before = await stage.boundingBox();
  const box = (await chunk(page, 'Shot 2 · frame 2').boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await expect(g.getByRole('img', { name: /^Routing scores of Shot 2 · frame 2 / })).toBeVisible();
  expect(await stage.boundingBox()).toEqual(before);
  await expect(g.getByText('(hover or focus; click or Enter to pin)')).toBeVisible();

  // a click pins it: the inspector stays when the mouse leaves
  await clickBox(page, 'Shot 2 · frame 2');
  await expect(chunk(page, 'Shot 2 · frame 2')).toHaveAttribute('aria-pressed', 'true');
  await page.mouse.move(2, 2);
  await expect(g.getByRole('combobox', { name: 'Pinned chunk' }).locator('option:checked')).toHaveText(
    'Shot 2 · frame 2',
  );
  await expect(g.getByRole('img', { name: /^Routing scores of Shot 2 · frame 2 / })).toBeVisible();
  expect(await stage.boundingBox()).toEqual(before);
  await expect(g.locator('.explained')).toHaveAttribute(
    'title',
    /summed over the chunk’s \d+ query tokens, \d+ layers and \d+ heads/,
  );

  // the keyboard: focus a box, arrows walk the chunks in stream order, Enter pins, Escape unpins
  await chunk(page, 'Shot 1 · frame 1').focus();
  await page.keyboard.press('ArrowRight');
  await expect(chunk(page, 'Shot 1 · frame 2')).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(chunk(page, 'Shot 1 · frame 2')).toHaveAttribute('aria-pressed', 'true');
  await expect(chunk(page, 'Shot 2 · frame 2')).toHaveAttribute('aria-pressed', 'false');
  await expect(g.getByRole('combobox', { name: 'Pinned chunk' }).locator('option:checked')).toHaveText(
    'Shot 1 · frame 2',
  );
  await page.keyboard.press('Escape');
  await expect(g.getByRole('combobox', { name: 'Pinned chunk' }).locator('option:checked')).toHaveText(
    'none (hover or click a box)',
  );
  await chunk(page, 'Shot 1 · frame 2').blur();

  // the layer × head overview draws one layer and head
  await g.getByRole('button', { name: /^Layer 1, head 2: sparsity/ }).click();
  await expect(g.getByRole('combobox', { name: 'Layer' })).toHaveValue('0');
  await expect(g.getByRole('combobox', { name: 'Head' })).toHaveValue('1');
  await g.getByRole('button', { name: 'all', exact: true }).click();

  // routing.json, as `moc generate` writes it
  const [dl] = await Promise.all([
    page.waitForEvent('download'),
    g.getByRole('button', { name: 'Export routing.json' }).click(),
  ]);
  const json = JSON.parse(readFileSync((await dl.path())!, 'utf8'));
  expect(json).toMatchObject({ mode: 'moc', causal: true });
  expect(json.chunks).toHaveLength(7);
  expect(json.steps.at(-1).step).toBe(2);
  expect(json.steps.at(-1).layers[0].edges.length).toBeGreaterThan(0);

  // after a reload the graph is still there, from storage
  await page.reload();
  await expect(page.getByText('Loaded', { exact: true })).toBeVisible({ timeout: 60_000 });
  await expect(g.locator('.routing-chunk')).toHaveCount(7);
  await expect(g.getByText('Restored from this browser’s storage')).toBeVisible();
  await expect(g.getByText('No run yet.')).toHaveCount(0);
  await expect(g.getByText('Sparsity')).toBeVisible();
  await clickBox(page, 'Shot 2 · frame 1');
  await expect(g.getByRole('img', { name: /^Routing scores of Shot 2 · frame 1 / })).toBeVisible();

  // a new run does not blank it: the last run stays until the new one's first trace
  await startLongRun(page); // 40 steps: the first trace comes at step 3
  await expect(g.locator('.routing-chunk')).toHaveCount(7);
  await page.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByText(/^Cancelled at step \d+ of 40/)).toBeVisible({ timeout: 60_000 });
  await expect(g.locator('.routing-chunk')).toHaveCount(7);
  expect(problems).toEqual([]);
});

/** A board of `shots` shots of `frames` frames, captions the models know. */
function board(shots: number, frames: number) {
  const captions = [
    'Character 1 bounces, wide.',
    'Character 2 spins in the snow.',
    'Nobody is in the meadow, wide.',
    'Character 1 moves left, close-up.',
  ];
  return {
    ...BOARD,
    shots: Array.from({ length: shots }, (_, i) => ({ caption: captions[i % captions.length], frames, seed: i + 1 })),
  };
}

for (const [shots, frames] of [
  [8, 4],
  [32, 2],
] as const) {
  test(`screenshot: the routing graph at ${shots} shots`, async ({ page }) => {
    test.skip(!hasModel(), `no model folder at ${MODEL}`);
    test.setTimeout(600_000);
    await serveModel(page);
    await openWithBoard(page);
    await page.getByLabel('Storyboard file to import').setInputFiles({
      name: 'big.json',
      mimeType: 'application/json',
      buffer: Buffer.from(JSON.stringify(board(shots, frames))),
    });
    await expect(page.getByRole('textbox', { name: `Shot ${shots} caption` })).toBeVisible();
    await page.setViewportSize({ width: 1440, height: 900 });
    await generate(page, 1);
    const g = graph(page);
    await g.scrollIntoViewIfNeeded();
    await expect(g.locator('.routing-chunk')).toHaveCount(1 + shots * (1 + frames));
    // labels never overlap, and none is cut at the edge
    const boxes = await g
      .locator('.routing-label')
      .evaluateAll((els) =>
        els.map((e) => e.getBoundingClientRect()).map((r) => ({ l: r.left, r: r.right, t: r.top })),
      );
    const stage = (await g.locator('.routing-stage').boundingBox())!;
    for (const b of boxes) expect(b.l >= stage.x && b.r <= stage.x + stage.width).toBe(true);
    const rows = new Map<number, { l: number; r: number }[]>();
    for (const b of boxes) rows.set(Math.round(b.t), [...(rows.get(Math.round(b.t)) ?? []), b]);
    for (const row of rows.values()) {
      row.sort((a, b) => a.l - b.l);
      for (let i = 1; i < row.length; i++) expect(row[i].l).toBeGreaterThanOrEqual(row[i - 1].r);
    }
    await clickBox(page, `Shot ${shots} · frame ${frames}`);
    await expect(
      g.getByRole('img', { name: new RegExp(`^Routing scores of Shot ${shots} · frame ${frames} `) }),
    ).toBeVisible();
    await g.screenshot({ path: `e2e-artifacts/routing-graph-${shots}-shots.png` });
    if (shots === 32) {
      // the wheel zooms about the cursor: the pinned box grows and stays under it
      const last = chunk(page, `Shot ${shots} · frame ${frames}`);
      const b0 = (await last.boundingBox())!;
      await page.mouse.move(b0.x + b0.width / 2, b0.y + b0.height / 2);
      await page.mouse.wheel(0, -700);
      await expect.poll(async () => (await last.boundingBox())!.width).toBeGreaterThan(b0.width * 2.5);
      const b1 = (await last.boundingBox())!;
      expect(Math.abs(b1.x + b1.width / 2 - (b0.x + b0.width / 2))).toBeLessThan(b1.width);
      await g.screenshot({ path: `e2e-artifacts/routing-graph-${shots}-shots-zoomed.png` });
      await g.getByRole('button', { name: 'Fit' }).click();
      await expect.poll(async () => (await last.boundingBox())!.width).toBeCloseTo(b0.width, 0);
      return;
    }
    // teaching mode on the same run: the plain-words introduction, the picked patch on the frame
    const teach = page.getByRole('region', { name: 'Teaching mode' });
    await teach.getByRole('button', { name: 'Pick a query token' }).click();
    await page.getByRole('slider', { name: 'Timeline' }).fill(String(frames * 3));
    await page
      .getByRole('img', { name: new RegExp(`^Shot 4, frame 1 of ${frames}$`) })
      .click({ position: { x: 150, y: 120 } });
    await expect(teach.getByRole('heading', { name: 'The key set Ω(i) = M(i) ∪ R(i)' })).toBeVisible({
      timeout: 120_000,
    });
    await expect(page.getByRole('img', { name: /^Picked query token: patch row \d+ col \d+$/ })).toBeVisible();
    await expect(teach).toContainText('Shot 4 · frame 1');
    await teach.getByText('In plain words').click(); // open it again for the picture
    // the top of the panel (introduction, source, chunk strip, the first steps), without the status bar over it
    await page.setViewportSize({ width: 1440, height: 1100 });
    await teach.evaluate((el) => el.scrollIntoView({ block: 'start' }));
    const t = (await teach.boundingBox())!;
    await page.screenshot({
      path: 'e2e-artifacts/teaching-plain-words.png',
      clip: { x: t.x, y: t.y, width: t.width, height: Math.min(t.height, 980) },
      style: '.status-bar { visibility: hidden; }',
    });
    await page.locator('.player .viewport').screenshot({ path: 'e2e-artifacts/teaching-picked-patch.png' });
  });
}

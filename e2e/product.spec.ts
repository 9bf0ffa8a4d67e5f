/**
 * The studio as a product (issue 21): the document never scrolls past the app, versions keep
 * their seeds, work leaves the browser (project file, MP4/WebM), and a model folder from disk is
 * used for a generation. The model and the board: e2e/model-fixture.ts.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { BOARD, MODEL, decodeVideo, hasModel, openWithBoard, serveModel, watchRun } from './model-fixture.ts';

/** The model folder added from disk: the shipped tiny model. */
const OWN_MODEL = 'public/models/moc-tiny';

/** The document is exactly the window: nothing below the app to scroll to. */
async function expectNoOverscroll(page: Page): Promise<void> {
  await page.mouse.move(200, 300);
  for (let i = 0; i < 5; i++) await page.mouse.wheel(0, 2000);
  const m = await page.evaluate(() => ({
    scroll: document.documentElement.scrollHeight,
    view: window.innerHeight,
    y: window.scrollY,
  }));
  expect(m.scroll).toBe(m.view);
  expect(m.y).toBe(0);
}

test('first run: a tour, shortcuts on ?, no document overscroll; at phone width Generate is in reach', async ({
  page,
}) => {
  await page.goto('/');
  await expect(page.getByRole('status', { name: 'Engine status' })).toContainText(/Engine (ready|error)/, {
    timeout: 60_000,
  });
  await expect(page.locator('.chips .visually-hidden').first()).toBeAttached();
  await expectNoOverscroll(page);

  // the tour: shown on a first visit, stepped through, closed for good, reopened from the header
  const tour = page.getByRole('region', { name: 'Tour' });
  await expect(tour).toContainText('1 / 4 · Write the storyboard');
  await expect(page.getByText('Loaded', { exact: true })).toBeVisible({ timeout: 90_000 });
  await page.locator('.workspace').evaluate((el) => el.scrollTo(0, 0));
  await page.screenshot({ path: 'e2e-artifacts/first-run.png' });
  await tour.getByRole('button', { name: 'Next' }).click();
  await expect(tour).toContainText('2 / 4 · Generate');
  await tour.getByRole('button', { name: 'Close the tour' }).click();
  await expect(tour).toHaveCount(0);
  await page.reload();
  await expect(page.getByRole('heading', { name: 'Storyboard' })).toBeVisible();
  await expect(tour).toHaveCount(0);
  await page.getByRole('button', { name: 'Tour' }).click();
  await expect(tour).toContainText('1 / 4');

  // ? lists the shortcuts (not while typing), Esc closes them
  await page.getByRole('heading', { name: 'Storyboard' }).click();
  await page.keyboard.press('?');
  const keys = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
  await expect(keys).toContainText('Ctrl+Enter');
  await page.keyboard.press('Escape');
  await expect(keys).toHaveCount(0);
  await page.getByRole('textbox', { name: 'Shot 1 caption' }).press('?');
  await expect(keys).toHaveCount(0);
  await page.getByRole('textbox', { name: 'Shot 1 caption' }).press('Backspace');

  // a control explains itself
  await expect(page.locator('label', { has: page.getByRole('spinbutton', { name: 'Top-k' }) })).toHaveAttribute(
    'title',
    /how many extra chunks/,
  );

  // phone width: no overscroll, diagnostics collapsed to one line, Generate on screen at the top
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await expect(page.getByRole('heading', { name: 'Storyboard' })).toBeVisible();
  await expectNoOverscroll(page);
  const bar = page.getByRole('status', { name: 'Engine status' });
  await expect(bar.getByRole('button', { name: 'Details' })).toHaveAttribute('aria-expanded', 'false');
  expect((await bar.boundingBox())!.height).toBeLessThan(48);
  const quick = page.getByRole('toolbar', { name: 'Quick generate' }).getByRole('button', { name: 'Generate' });
  await expect(quick).toBeInViewport();
  await expect(page.getByText('Loaded', { exact: true })).toBeVisible({ timeout: 90_000 });
  await page.locator('.workspace').evaluate((el) => el.scrollTo(0, 0));
  await expect(quick).toBeInViewport();
  await expect(quick).toBeEnabled();
  await page.screenshot({ path: 'e2e-artifacts/phone.png' });
  await bar.getByRole('button', { name: 'Details' }).click();
  await expect(bar).toContainText('Adapter');
});

test('versions keep their seeds; the project file round-trips; video exports as MP4 or says why not', async ({
  page,
}) => {
  test.skip(!hasModel(), `no model folder at ${MODEL}`);
  test.setTimeout(240_000);
  await serveModel(page);
  await openWithBoard(page);
  await page.getByRole('spinbutton', { name: 'Sampler steps' }).fill('2');
  await page.getByRole('button', { name: 'Generate', exact: true }).click();
  await watchRun(page, 2);
  const seed = page.getByRole('spinbutton', { name: 'Shot 1 seed' });
  const status = page.getByLabel('Shot 1 version', { exact: true });
  await expect(seed).toHaveValue(String(BOARD.shots[0].seed));
  await expect(status).toHaveText('Generated · v1 of 1');

  // Regenerate on an unchanged shot: a new seed, shown in the field and beside the version
  await page.getByRole('button', { name: 'Regenerate shot 1' }).click();
  await watchRun(page, 2);
  const reseeded = await seed.inputValue();
  expect(reseeded).not.toBe(String(BOARD.shots[0].seed));
  await expect(status).toHaveText(`Generated · v2 of 2 · seed ${reseeded} (v1: ${BOARD.shots[0].seed})`);

  // Keep v1: its seed comes back and nothing reads as changed
  const takes = page.getByRole('region', { name: 'Shot 1 versions' });
  await takes.getByRole('listitem').filter({ hasText: 'v1' }).getByRole('button', { name: 'Keep this' }).click();
  await expect(seed).toHaveValue(String(BOARD.shots[0].seed));
  await expect(status).toHaveText('Generated · v1 of 2');
  // keeping the version already kept leaves the seed as it is
  await takes.getByRole('listitem').filter({ hasText: 'v2' }).getByRole('button', { name: 'Keep this' }).click();
  await expect(seed).toHaveValue(reseeded);
  await expect(status).toHaveText(`Generated · v2 of 2 · seed ${reseeded} (v1: ${BOARD.shots[0].seed})`);

  // a 10-digit seed is shown whole
  await seed.fill('4294967295');
  await seed.blur();
  await expect(seed).toHaveValue('4294967295');
  const fits = await seed.evaluate(
    (el) => (el as HTMLInputElement).scrollWidth <= (el as HTMLInputElement).clientWidth,
  );
  expect(fits).toBe(true);
  await expect(status).toContainText('Changed since generated (seed)');
  await seed.fill(reseeded);
  await seed.blur();
  await expect(status).toHaveText(`Generated · v2 of 2 · seed ${reseeded} (v1: ${BOARD.shots[0].seed})`);

  // the project file: save it, replace the board with a fresh import, open the file again
  await expect(page.locator('.save-state')).toHaveText('Saved');
  const [saved] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Save project' }).click(),
  ]);
  const projectText = readFileSync((await saved.path())!, 'utf8');
  expect(JSON.parse(projectText).takes).toHaveLength(3);
  await page.getByLabel('Storyboard file to import').setInputFiles({
    name: 'other.json',
    mimeType: 'application/json',
    buffer: Buffer.from(JSON.stringify({ ...BOARD, shots: [{ caption: 'Character 1 stays.', frames: 1, seed: 5 }] })),
  });
  await expect(page.getByRole('textbox', { name: 'Shot 2 caption' })).toHaveCount(0);
  await expect(page.getByText('Not generated yet', { exact: true })).toBeVisible();
  page.once('dialog', (d) => void d.accept());
  await page
    .getByLabel('Project file to open')
    .setInputFiles({ name: 'project.mocproject.json', mimeType: 'application/json', buffer: Buffer.from(projectText) });
  await expect(page.getByRole('textbox', { name: 'Shot 2 caption' })).toHaveValue(BOARD.shots[1].caption);
  await expect(seed).toHaveValue(reseeded);
  await expect(status).toHaveText(`Generated · v2 of 2 · seed ${reseeded} (v1: ${BOARD.shots[0].seed})`);
  await expect(page.getByRole('img', { name: 'Shot 1, middle frame' })).toBeVisible();
  await expect(page.getByRole('img', { name: 'Shot 2, middle frame' })).toBeVisible();
  await expect(takes.getByRole('listitem')).toHaveCount(2);
  // a broken file changes nothing and says why
  await page.getByLabel('Project file to open').setInputFiles({
    name: 'broken.json',
    mimeType: 'application/json',
    buffer: Buffer.from('{"format":"moc-studio-project","version":7}'),
  });
  await expect(
    page.getByText(
      'Could not open “broken.json”: it has version 7; this studio reads version 1 — your project is unchanged.',
    ),
  ).toBeVisible();
  await expect(seed).toHaveValue(reseeded);
  // and it was stored: a reload finds it
  await expect(page.locator('.save-state')).toHaveText('Saved');
  await page.reload();
  await expect(page.getByRole('textbox', { name: 'Shot 2 caption' })).toHaveValue(BOARD.shots[1].caption);
  await expect(status).toHaveText(`Generated · v2 of 2 · seed ${reseeded} (v1: ${BOARD.shots[0].seed})`);

  // video: a shot not generated is named before export; MP4 where H.264 encodes, else WebM with the reason
  await page.getByRole('button', { name: 'Add shot' }).click();
  await expect(page.getByRole('note', { name: 'Export warning' })).toHaveText(
    'Shot 3 not generated yet: the video will leave it out',
  );
  const canH264 = await page.evaluate(
    async () =>
      typeof VideoEncoder !== 'undefined' &&
      (
        await VideoEncoder.isConfigSupported({ codec: 'avc1.42001f', width: 256, height: 256 }).catch(() => ({
          supported: false,
        }))
      ).supported === true,
  );
  const hasEncoder = await page.evaluate(() => typeof VideoEncoder !== 'undefined');
  test.skip(!hasEncoder, 'no WebCodecs VideoEncoder in this browser');
  await expect(page.getByRole('combobox', { name: 'Video format' })).toHaveValue('mp4');
  const [video] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Export video' }).click(),
  ]);
  const bytes = readFileSync((await video.path())!);
  const result = page.getByRole('status', { name: 'Export result' });
  await expect(result).toContainText('Shot 3 left out (not generated yet)');
  if (canH264) {
    expect(video.suggestedFilename()).toBe('moc-studio.mp4');
    expect(bytes.subarray(4, 8).toString('latin1')).toBe('ftyp'); // an ISO BMFF (MP4) file
    await expect(result).toContainText('Exported MP4 (avc)');
    const decoded = await decodeVideo(page, bytes, 'video/mp4');
    expect(decoded.width).toBeGreaterThan(0);
    expect(decoded.duration).toBeGreaterThan(0);
    expect(decoded.spread, 'the first decoded frame is one flat colour').toBeGreaterThan(8);
  } else {
    expect(video.suggestedFilename()).toBe('moc-studio.webm');
    expect(bytes.subarray(0, 4)).toEqual(Buffer.from([0x1a, 0x45, 0xdf, 0xa3]));
    await expect(result).toContainText(
      /Exported WEBM \((vp9|vp8|av1)\) · not MP4: this browser cannot encode H\.264 at \d+×\d+/,
    );
  }
  console.log(`H.264 encoding supported: ${canH264}`);
});

test('a model folder from disk is checked, stored, listed, used for a generation and removable', async ({
  page,
}, info) => {
  test.skip(!hasModel(), `no model folder at ${MODEL}`);
  test.setTimeout(240_000);
  await serveModel(page);
  await openWithBoard(page);
  const picker = page.getByRole('combobox', { name: 'Model' });

  // a folder whose file does not match its manifest is refused, and nothing is listed
  const bad = info.outputPath('broken-model');
  mkdirSync(bad, { recursive: true });
  for (const f of readdirSync(OWN_MODEL)) copyFileSync(join(OWN_MODEL, f), join(bad, f));
  writeFileSync(
    join(bad, 'vocab.json'),
    readFileSync(join(OWN_MODEL, 'vocab.json'), 'utf8').replace('"meadow"', '"medow"'),
  );
  await page.getByLabel('Model folder to add').setInputFiles(bad);
  await expect(page.getByRole('alert').filter({ hasText: 'Could not add the folder “broken-model”' })).toContainText(
    /vocab\.json has \d+ bytes, the manifest says \d+/,
  );
  await expect(page.getByRole('list', { name: 'Your models' })).toHaveCount(0);

  // the real one: added, selected and loaded (32×32 frames: not the e2e model's 16×16)
  await page.getByLabel('Model folder to add').setInputFiles(OWN_MODEL);
  await expect(page.getByText('Added “moc-tiny”: it is the model in use now.')).toBeVisible({ timeout: 60_000 });
  await expect(picker).toHaveValue('moc-tiny');
  await expect(page.getByText(/^Loaded$/)).toBeVisible({ timeout: 60_000 });
  await expect(page.locator('.model-status')).toContainText('32×32 px');
  await expect(page.getByRole('list', { name: 'Your models' })).toContainText('moc-tiny');

  // used for a generation
  await page.getByRole('spinbutton', { name: 'Sampler steps' }).fill('2');
  await page.getByRole('button', { name: 'Generate', exact: true }).click();
  await watchRun(page, 2);
  await expect(page.getByRole('img', { name: 'Shot 1, middle frame' })).toBeVisible();
  expect(
    await page.evaluate(
      () => window.mocStudio!.store.getState().takes[window.mocStudio!.store.getState().shotIds[0]]?.[0]?.model,
    ),
  ).toBe('moc-tiny');
  expect(
    await page.evaluate(
      () => window.mocStudio!.store.getState().takes[window.mocStudio!.store.getState().shotIds[0]]?.[0]?.width,
    ),
  ).toBe(32);

  // still there after a reload (from this browser's storage: nothing is served at local-models/)
  await page.reload();
  await expect(picker).toHaveValue('moc-tiny');
  await expect(page.locator('.model-status')).toContainText('32×32 px', { timeout: 60_000 });

  // removable: the studio goes back to the shipped model
  await page.getByRole('button', { name: 'Remove model moc-tiny' }).click();
  await expect(page.getByRole('list', { name: 'Your models' })).toHaveCount(0);
  await expect(picker).toHaveValue('e2e');
  await expect(page.locator('.model-status')).toContainText('16×16 px', { timeout: 60_000 });
});

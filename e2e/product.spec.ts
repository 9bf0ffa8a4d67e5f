/**
 * The studio as a product (issue 21): the document never scrolls past the app, versions keep
 * their seeds, work leaves the browser (project file, MP4/WebM), and a model folder from disk is
 * used for a generation. The model and the board: e2e/model-fixture.ts.
 */
import { readFileSync } from 'node:fs';
import { expect, test, type Page } from '@playwright/test';
import { BOARD, MODEL, decodeVideo, hasModel, openWithBoard, serveModel, watchRun } from './model-fixture.ts';

/** The document is exactly the window: nothing below the app to scroll to. */
async function expectNoOverscroll(page: Page): Promise<void> {
  await page.mouse.move(200, 300);
  for (let i = 0; i < 5; i++) await page.mouse.wheel(0, 2000);
  const m = await page.evaluate(() => ({ scroll: document.documentElement.scrollHeight, view: window.innerHeight, y: window.scrollY }));
  expect(m.scroll).toBe(m.view);
  expect(m.y).toBe(0);
}

test('the document does not scroll past the app (desktop and phone widths)', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByRole('status', { name: 'Engine status' })).toContainText(/Engine (ready|error)/, { timeout: 60_000 });
  await expect(page.locator('.chips .visually-hidden').first()).toBeAttached();
  await expectNoOverscroll(page);
  await page.setViewportSize({ width: 390, height: 844 });
  await expectNoOverscroll(page);
});

test('versions keep their seeds; the project file round-trips; video exports as MP4 or says why not', async ({ page }) => {
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
  const fits = await seed.evaluate((el) => (el as HTMLInputElement).scrollWidth <= (el as HTMLInputElement).clientWidth);
  expect(fits).toBe(true);
  await expect(status).toContainText('Changed since generated (seed)');
  await seed.fill(reseeded);
  await seed.blur();
  await expect(status).toHaveText(`Generated · v2 of 2 · seed ${reseeded} (v1: ${BOARD.shots[0].seed})`);

  // the project file: save it, replace the board with a fresh import, open the file again
  await expect(page.locator('.save-state')).toHaveText('Saved');
  const [saved] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Save project' }).click()]);
  const projectText = readFileSync((await saved.path())!, 'utf8');
  expect(JSON.parse(projectText).takes).toHaveLength(3);
  await page.getByLabel('Storyboard file to import').setInputFiles({ name: 'other.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify({ ...BOARD, shots: [{ caption: 'Character 1 stays.', frames: 1, seed: 5 }] })) });
  await expect(page.getByRole('textbox', { name: 'Shot 2 caption' })).toHaveCount(0);
  await expect(page.getByText('Not generated yet')).toBeVisible();
  page.once('dialog', (d) => void d.accept());
  await page.getByLabel('Project file to open').setInputFiles({ name: 'project.mocproject.json', mimeType: 'application/json', buffer: Buffer.from(projectText) });
  await expect(page.getByRole('textbox', { name: 'Shot 2 caption' })).toHaveValue(BOARD.shots[1].caption);
  await expect(seed).toHaveValue(reseeded);
  await expect(status).toHaveText(`Generated · v2 of 2 · seed ${reseeded} (v1: ${BOARD.shots[0].seed})`);
  await expect(page.getByRole('img', { name: 'Shot 1, middle frame' })).toBeVisible();
  await expect(page.getByRole('img', { name: 'Shot 2, middle frame' })).toBeVisible();
  await expect(takes.getByRole('listitem')).toHaveCount(2);
  // a broken file changes nothing and says why
  await page.getByLabel('Project file to open').setInputFiles({ name: 'broken.json', mimeType: 'application/json', buffer: Buffer.from('{"format":"moc-studio-project","version":7}') });
  await expect(page.getByText('Could not open “broken.json”: it has version 7; this studio reads version 1 — your project is unchanged.')).toBeVisible();
  await expect(seed).toHaveValue(reseeded);
  // and it was stored: a reload finds it
  await expect(page.locator('.save-state')).toHaveText('Saved');
  await page.reload();
  await expect(page.getByRole('textbox', { name: 'Shot 2 caption' })).toHaveValue(BOARD.shots[1].caption);
  await expect(status).toHaveText(`Generated · v2 of 2 · seed ${reseeded} (v1: ${BOARD.shots[0].seed})`);

  // video: a shot not generated is named before export; MP4 where H.264 encodes, else WebM with the reason
  await page.getByRole('button', { name: 'Add shot' }).click();
  await expect(page.getByRole('note', { name: 'Export warning' })).toHaveText('Shot 3 not generated yet: the video will leave it out');
  const canH264 = await page.evaluate(async () => typeof VideoEncoder !== 'undefined' && (await VideoEncoder.isConfigSupported({ codec: 'avc1.42001f', width: 256, height: 256 }).catch(() => ({ supported: false }))).supported === true);
  const hasEncoder = await page.evaluate(() => typeof VideoEncoder !== 'undefined');
  test.skip(!hasEncoder, 'no WebCodecs VideoEncoder in this browser');
  await expect(page.getByRole('combobox', { name: 'Video format' })).toHaveValue('mp4');
  const [video] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export video' }).click()]);
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
    await expect(result).toContainText(/Exported WEBM \((vp9|vp8|av1)\) · not MP4: this browser cannot encode H\.264 at \d+×\d+/);
  }
  console.log(`H.264 encoding supported: ${canH264}`);
});

/**
 * Shared by the specs that generate: the model they serve, a tiny storyboard, and helpers to
 * watch a run.
 *
 * The model: MOC_E2E_MODEL names a model folder (config.json, vocab.json, model.safetensors,
 * manifest.json); by default it is the committed tiny random-weight fixture
 * (tests/fixtures/v1/model: 16×16 frames, 2 layers, 8-token captions), which SwiftShader runs in
 * seconds. It is served as the studio's only model (/models/index.json and /models/e2e/ are
 * routed, the engine worker's fetches included), so the tests do not depend on what
 * public/models ships. `MOC_E2E_MODEL=public/models/moc-base` tests the shipped model (slow
 * without a GPU).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect, type Page } from '@playwright/test';

export const MODEL = process.env.MOC_E2E_MODEL ?? 'tests/fixtures/v1/model';

/** True when the model folder is there (the specs skip otherwise). */
export const hasModel = (): boolean => existsSync(join(MODEL, 'manifest.json'));

/** A board small enough for SwiftShader: two shots of two frames, captions of at most 8 tokens. */
export const BOARD = {
  version: 1,
  globalCaption: 'Character 1 is a red star.',
  shots: [
    { caption: 'Character 1 bounces, wide.', frames: 2, seed: 1 },
    { caption: 'Character 1 spins in the snow.', frames: 2, seed: 2 },
  ],
};

/** Requests for each model file the server answered since the last `serveModel` (the Cache API should spare repeats). */
export const served = new Map<string, number>();

/** Serves MODEL as the studio's only model, for every page of the page's context; counts `served` from zero. */
export async function serveModel(page: Page): Promise<void> {
  const LOCAL = MODEL;
  served.clear(); // specs share this module in one Playwright worker: count only this test's requests
  // Routes apply to the engine worker's fetches too.
  await page.context().route('**/models/index.json', (route) =>
    route.fulfill({
      json: {
        models: [
          {
            name: 'e2e',
            path: 'models/e2e/',
            description: `local model ${LOCAL}`,
            params: 0,
            bytes: statSync(join(LOCAL, 'model.safetensors')).size,
            default: true,
          },
        ],
      },
    }),
  );
  await page.context().route('**/models/e2e/*', (route) => {
    const file = new URL(route.request().url()).pathname.split('/').pop()!;
    served.set(file, (served.get(file) ?? 0) + 1);
    const path = join(LOCAL, file);
    return existsSync(path)
      ? route.fulfill({
          body: readFileSync(path),
          contentType: file.endsWith('.json') ? 'application/json' : 'application/octet-stream',
        })
      : route.fulfill({ status: 404 });
  });
}

/** Opens the studio, waits for the model, and imports BOARD. */
export async function openWithBoard(page: Page): Promise<void> {
  await page.goto('/');
  await expect(page.getByText('Loaded', { exact: true })).toBeVisible({ timeout: 60_000 });
  await page
    .getByLabel('Storyboard file to import')
    .setInputFiles({ name: 'tiny.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(BOARD)) });
  await expect(page.getByRole('textbox', { name: 'Shot 2 caption' })).toHaveValue(BOARD.shots[1].caption);
}

export const progress = (page: Page) => page.getByRole('progressbar', { name: 'Generation progress' });

/** Values the progress bar showed while the run went on, until it says Done. */
export async function watchRun(page: Page, steps: number): Promise<number[]> {
  const seen: number[] = [];
  await expect(progress(page)).toBeVisible();
  await expect
    .poll(
      async () => {
        seen.push(await progress(page).evaluate((el) => (el as HTMLProgressElement).value));
        return page.locator('.run-line').innerText();
      },
      { timeout: 150_000, intervals: [250] },
    )
    .toMatch(/^Done/);
  await expect(progress(page)).toHaveJSProperty('max', steps);
  await expect(progress(page)).toHaveJSProperty('value', steps);
  return seen;
}

/** Starts a long run (40 steps) and waits until it has done at least one step. */
export async function startLongRun(page: Page): Promise<void> {
  await page.getByRole('spinbutton', { name: 'Sampler steps' }).fill('40');
  await page.getByRole('button', { name: 'Generate', exact: true }).click();
  await expect
    .poll(() => progress(page).evaluate((el) => (el as HTMLProgressElement).value), { timeout: 60_000 })
    .toBeGreaterThanOrEqual(1);
}

/** Loads `bytes` in a <video> element of the page: its size, duration, and the brightness spread of its first frame. */
export async function decodeVideo(
  page: Page,
  bytes: Buffer,
  type: string,
): Promise<{ width: number; height: number; duration: number; spread: number }> {
  return page.evaluate(
    async ([b64, mime]) => {
      const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const url = URL.createObjectURL(new Blob([data], { type: mime }));
      const video = document.createElement('video');
      video.muted = true;
      try {
        await new Promise<void>((resolve, reject) => {
          video.addEventListener('loadeddata', () => resolve(), { once: true });
          video.addEventListener(
            'error',
            () => reject(new Error(`the video does not decode: ${video.error?.message ?? video.error?.code}`)),
            { once: true },
          );
          video.src = url;
        });
        // at loadeddata Chromium may not have a frame to draw yet (drawImage gives transparent
        // black); after a seek it has
        video.currentTime = 0.01;
        await new Promise((resolve) => video.addEventListener('seeked', resolve, { once: true }));
        const canvas = document.createElement('canvas');
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        const ctx = canvas.getContext('2d')!;
        ctx.drawImage(video, 0, 0);
        const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
        let min = 255;
        let max = 0;
        for (let i = 0; i < px.length; i += 4) {
          const y = (px[i] + px[i + 1] + px[i + 2]) / 3;
          min = Math.min(min, y);
          max = Math.max(max, y);
        }
        return { width: video.videoWidth, height: video.videoHeight, duration: video.duration, spread: max - min };
      } finally {
        URL.revokeObjectURL(url);
      }
    },
    [bytes.toString('base64'), type] as const,
  );
}

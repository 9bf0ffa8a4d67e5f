/** Named projects (src/state/actions/projects.ts): a new project parks the current one whole, and switching brings it back, versions and pixels included. */
import 'fake-indexeddb/auto';
import { describe, expect, it, vi } from 'vitest';

const mem = new Map<string, string>();
vi.stubGlobal('localStorage', {
  getItem: (k: string) => mem.get(k) ?? null,
  setItem: (k: string, v: string) => void mem.set(k, v),
});

const { currentSummary, deleteProject, listProjects, newProject, renameProject, switchProject } =
  await import('../../src/state/actions/projects.ts');
const { useStudio } = await import('../../src/state/store.ts');
const { getTake, putTake } = await import('../../src/state/media.ts');
const { updateShot } = await import('../../src/state/board-ops.ts');

const st = () => useStudio.getState();

describe('named projects', () => {
  it('parks the current project under its name and brings it back whole', async () => {
    renameProject('  Stars ');
    expect(currentSummary().name).toBe('Stars');
    const starsId = currentSummary().id;
    st().edit((b) => updateShot(b, 0, { caption: 'Character 1 spins.', seed: 4_000_000_000 }));
    const shot = st().shotIds[0];
    const meta = {
      id: 'take-1',
      shotId: shot,
      createdAt: 1,
      caption: 'Character 1 spins.',
      globalCaption: '',
      seed: 4_000_000_000,
      frames: 1,
      width: 1,
      height: 1,
      model: 'm',
      steps: 2,
      guidance: 3,
      attention: st().settings.attention,
      runMs: 1,
      sparsity: 0,
    };
    putTake('take-1', { pixels: new Uint8ClampedArray([1, 2, 3, 4]), frames: 1, width: 1, height: 1 });
    st().addTakes([meta]);

    await newProject('Circles');
    expect(currentSummary().name).toBe('Circles');
    expect(st().board.shots[0].caption).not.toBe('Character 1 spins.');
    expect(st().takes).toEqual({});
    expect(getTake('take-1')).toBeUndefined();
    expect((await listProjects()).map((p) => p.name)).toEqual(['Stars']);

    await switchProject(starsId);
    expect(currentSummary()).toEqual({ id: starsId, name: 'Stars' });
    expect(st().board.shots[0]).toMatchObject({ caption: 'Character 1 spins.', seed: 4_000_000_000 });
    expect(st().chosen[shot]).toBe('take-1');
    expect([...getTake('take-1')!.pixels]).toEqual([1, 2, 3, 4]);
    const parked = await listProjects();
    expect(parked.map((p) => p.name)).toEqual(['Circles']);

    await deleteProject(parked[0].id);
    expect(await listProjects()).toEqual([]);
    await expect(switchProject('nope')).rejects.toThrow('no project nope');
    expect(st().chosen[shot]).toBe('take-1'); // a failed switch changes nothing
  });
});

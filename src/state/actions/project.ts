/**
 * Project files in and out (src/state/project-file.ts): save the whole project — storyboard,
 * settings, every version with its pixels, the kept ones, the last run's routing traces — as
 * one JSON file, and open one in place of the project here (its versions are stored in
 * IndexedDB as generated ones are). A bad file changes nothing and says why in one line.
 */
import { dropTakes, getTake, putTake } from '../media.ts';
import * as persist from '../persist.ts';
import { MAX_PROJECT_BYTES, ProjectFileError, readProject, writeProject, type Project } from '../project-file.ts';
import { useStudio } from '../store.ts';
import type { TakeMeta } from '../types.ts';

/** The project here, as the text of a project file. */
export function exportProject(name = 'MoC Studio project'): string {
  return writeProject(currentProject(name));
}

/** The project here (its pixels are the store's own arrays, not copies). */
export function currentProject(name: string): Project {
  const s = useStudio.getState();
  const takes: Project['takes'] = [];
  for (const list of Object.values(s.takes)) {
    for (const meta of list) {
      const clip = getTake(meta.id);
      if (clip) takes.push({ meta, pixels: clip.pixels });
    }
  }
  const { traces, shotIds, captions } = s.routing;
  return {
    name,
    board: { board: s.board, shotIds: s.shotIds },
    settings: s.settings,
    takes,
    chosen: s.chosen,
    routing: traces.length ? { traces, shotIds, captions } : null,
  };
}

/**
 * Opens a project file in place of the project here, once it has been read and checked and
 * `confirm` (asked only for a good file) agrees. Returns null, or a one-line problem (then
 * nothing here changed).
 */
export async function openProjectFile(
  file: Blob & { name: string },
  confirm: (project: Project) => boolean = () => true,
): Promise<string | null> {
  const why = (what: string): string => `Could not open “${file.name}”: ${what} — your project is unchanged.`;
  if (file.size > MAX_PROJECT_BYTES)
    return why(
      `it is ${Math.round(file.size / 2 ** 20)} MiB, more than the ${MAX_PROJECT_BYTES / 2 ** 20} MiB a project file may be`,
    );
  let project: Project;
  try {
    project = readProject(await file.text());
  } catch (e) {
    return why(e instanceof ProjectFileError ? e.message : (e as Error).message);
  }
  if (!confirm(project)) return null;
  await applyProject(project);
  return null;
}

/** Replaces the board, settings, versions and routing here with `project`'s, in memory and in IndexedDB. */
export async function applyProject(project: Project): Promise<void> {
  const st = useStudio.getState();
  const old = Object.values(st.takes).flatMap((list) => list.map((t) => t.id));
  dropTakes(old);
  const byShot: Record<string, TakeMeta[]> = {};
  for (const t of [...project.takes].sort((a, b) => a.meta.createdAt - b.meta.createdAt)) {
    putTake(t.meta.id, { pixels: t.pixels, frames: t.meta.frames, width: t.meta.width, height: t.meta.height });
    (byShot[t.meta.shotId] ??= []).push(t.meta);
  }
  st.replaceBoard(project.board, false);
  st.setSettings({ steps: project.settings.steps, guidance: project.settings.guidance });
  st.setTakes(byShot, project.chosen);
  if (project.routing) st.setTraces(project.routing.traces, project.routing.shotIds, project.routing.captions);
  else
    st.setTraces(
      [],
      project.board.shotIds,
      project.board.board.shots.map((s) => s.caption),
    );
  if (st.save.state === 'off') return;
  try {
    await persist.deleteTakes(old);
    for (const t of project.takes) await persist.saveTake(t.meta, t.pixels);
  } catch (e) {
    useStudio
      .getState()
      .setSave('error', `The opened project's versions could not be saved in this browser: ${(e as Error).message}`);
  }
}

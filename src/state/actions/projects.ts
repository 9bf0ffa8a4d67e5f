/**
 * Several named projects. The project being edited is the one autosaved in the studio's
 * database (persist.ts) as before; every other project is parked whole — board, settings, every
 * version with its pixels, routing — in a database of its own (`moc-studio-projects`). Switching
 * parks the current project and brings the other one in; nothing is ever dropped on the way.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import { defaultBoard } from '../board-ops.ts';
import type { Project } from '../project-file.ts';
import { useStudio } from '../store.ts';
import { DEFAULT_SETTINGS } from '../types.ts';
import { applyProject, currentProject } from './project.ts';

export const PROJECTS_DB = 'moc-studio-projects';
const CURRENT_KEY = 'moc-studio:project';

export interface ProjectSummary {
  id: string;
  name: string;
  savedAt: number;
}

interface ParkedProject extends ProjectSummary {
  project: Project;
}

interface ProjectsDb extends DBSchema {
  projects: { key: string; value: ParkedProject };
}

let db: Promise<IDBPDatabase<ProjectsDb>> | null = null;
function open(): Promise<IDBPDatabase<ProjectsDb>> {
  db ??= openDB<ProjectsDb>(PROJECTS_DB, 1, {
    upgrade: (d) => void d.createObjectStore('projects', { keyPath: 'id' }),
  });
  return db;
}

const newId = (): string => `project-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;

/** The project being edited: its id and name (a first visit: "Untitled project"). */
export function currentSummary(): { id: string; name: string } {
  try {
    const raw = JSON.parse(localStorage.getItem(CURRENT_KEY) ?? 'null') as { id?: unknown; name?: unknown } | null;
    if (raw && typeof raw.id === 'string' && typeof raw.name === 'string') return { id: raw.id, name: raw.name };
  } catch {
    // unreadable: start a name afresh (the project itself is in the studio's database)
  }
  const first = { id: newId(), name: 'Untitled project' };
  setCurrent(first);
  return first;
}

function setCurrent(c: { id: string; name: string }): void {
  try {
    localStorage.setItem(CURRENT_KEY, JSON.stringify(c));
  } catch {
    // storage blocked: the name is not kept across reloads
  }
}

/** Renames the project being edited. */
export function renameProject(name: string): void {
  setCurrent({ ...currentSummary(), name: name.trim() || 'Untitled project' });
}

/** The parked projects (not the one being edited), newest first. */
export async function listProjects(): Promise<ProjectSummary[]> {
  const all = await (await open()).getAll('projects');
  return all.map(({ id, name, savedAt }) => ({ id, name, savedAt })).sort((a, b) => b.savedAt - a.savedAt);
}

/** Parks the project being edited (a snapshot; its pixels are copied by IndexedDB). */
async function parkCurrent(): Promise<void> {
  const c = currentSummary();
  await (await open()).put('projects', { ...c, savedAt: Date.now(), project: currentProject(c.name) });
}

/** Parks the project being edited and starts a new, empty one named `name`. */
export async function newProject(name: string): Promise<void> {
  await parkCurrent();
  const empty: Project = {
    name,
    board: defaultBoard(),
    settings: { ...useStudio.getState().settings, steps: DEFAULT_SETTINGS.steps },
    takes: [],
    chosen: {},
    routing: null,
  };
  await applyProject(empty);
  setCurrent({ id: newId(), name: name.trim() || 'Untitled project' });
}

/** Parks the project being edited and brings the parked project `id` in. @throws Error when there is no such project. */
export async function switchProject(id: string): Promise<void> {
  const d = await open();
  const target = await d.get('projects', id);
  if (!target) throw new Error(`no project ${id} in this browser`);
  await parkCurrent();
  await applyProject(target.project);
  await d.delete('projects', id);
  setCurrent({ id: target.id, name: target.name });
}

/** Deletes a parked project for good. */
export async function deleteProject(id: string): Promise<void> {
  await (await open()).delete('projects', id);
}

import { useRef, useState, type DragEvent } from 'react';
import { useShallow } from 'zustand/react/shallow';
import {
  addLocalModel,
  folderFromFileList,
  removeLocalModel,
  type PickedFolder,
} from '../state/actions/local-models.ts';
import { isLocalEntry } from '../state/local-models.ts';
import { isRunning } from '../state/slices/generation.ts';
import { useStudio } from '../state/store.ts';
import { formatBytes } from '../model/limits.ts';

/** The File System Access folder picker, where the browser has one. */
type DirectoryPicker = () => Promise<FileSystemDirectoryHandle & { values(): AsyncIterable<FileSystemHandle> }>;

/**
 * Your own model: add an exported model folder from disk (a folder input always; the File
 * System Access picker beside it where the browser has one; or drop the folder here), see the
 * ones added, remove them.
 */
export function LocalModels() {
  const entries = useStudio(useShallow((s) => s.model.entries.filter(isLocalEntry)));
  const running = useStudio((s) => isRunning(s.run.phase));
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ error: boolean; text: string } | null>(null);
  const [over, setOver] = useState(false);
  const inputRef = useRef<HTMLInputElement>(null);
  const picker = (window as { showDirectoryPicker?: DirectoryPicker }).showDirectoryPicker;

  const add = async (picked: PickedFolder | null): Promise<void> => {
    if (!picked) return setMessage({ error: true, text: 'That folder has no files.' });
    setBusy(true);
    setMessage({ error: false, text: `Checking “${picked.folder}”…` });
    const problem = await addLocalModel(picked);
    setBusy(false);
    setMessage(
      problem
        ? { error: true, text: problem }
        : { error: false, text: `Added “${picked.folder}”: it is the model in use now.` },
    );
  };
  const onDrop = (e: DragEvent): void => {
    e.preventDefault();
    setOver(false);
    const entry = e.dataTransfer.items[0]?.webkitGetAsEntry?.();
    if (entry?.isDirectory) void readDroppedFolder(entry as FileSystemDirectoryEntry).then(add);
    else setMessage({ error: true, text: 'Drop a model folder (with manifest.json), not single files.' });
  };
  const disabled = busy || running;

  return (
    <div
      className={`local-models${over ? ' drop-over' : ''}`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={onDrop}
    >
      <div className="button-row">
        <button
          type="button"
          className="small"
          disabled={disabled}
          onClick={() => inputRef.current?.click()}
          title="A folder written by python3 -m train.export: manifest.json, config.json, vocab.json, model.safetensors. It is checked as a download is (sizes, sha256, config, vocabulary) and kept in this browser."
        >
          Add model folder…
        </button>
        {picker && (
          <button
            type="button"
            className="small"
            disabled={disabled}
            onClick={() => void pickWith(picker).then(add, () => undefined)}
            title="The same, with the system's folder picker"
          >
            Folder picker…
          </button>
        )}
        <span className="muted small-text">or drop a folder here</span>
      </div>
      <input
        ref={inputRef}
        type="file"
        hidden
        multiple
        aria-label="Model folder to add"
        {...{ webkitdirectory: '', directory: '' }}
        onChange={(e) => {
          const picked = e.target.files?.length ? folderFromFileList(e.target.files) : null;
          e.target.value = '';
          void add(picked);
        }}
      />
      {message && (
        <p className={`small-text ${message.error ? 'error-text' : 'muted'}`} role={message.error ? 'alert' : 'status'}>
          {message.text}
        </p>
      )}
      {entries.length > 0 && (
        <ul className="local-model-list small-text" aria-label="Your models">
          {entries.map((e) => (
            <li key={e.name}>
              <code>{e.name}</code> <span className="muted">· {formatBytes(e.bytes)}</span>{' '}
              <button
                type="button"
                className="link-button danger"
                disabled={disabled}
                aria-label={`Remove model ${e.name}`}
                onClick={() => void removeLocalModel(e.name)}
              >
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** The top-level files of a folder chosen with the File System Access picker. */
async function pickWith(picker: DirectoryPicker): Promise<PickedFolder> {
  const dir = await picker();
  const files = new Map<string, Blob>();
  for await (const h of dir.values())
    if (h.kind === 'file') files.set(h.name, await (h as FileSystemFileHandle).getFile());
  return { folder: dir.name, files };
}

/** The top-level files of a dropped folder. */
async function readDroppedFolder(dir: FileSystemDirectoryEntry): Promise<PickedFolder> {
  const reader = dir.createReader();
  const all: FileSystemEntry[] = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) break;
    all.push(...batch);
  }
  const files = new Map<string, Blob>();
  for (const e of all)
    if (e.isFile)
      files.set(e.name, await new Promise<File>((resolve, reject) => (e as FileSystemFileEntry).file(resolve, reject)));
  return { folder: dir.name, files };
}

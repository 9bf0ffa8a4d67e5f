/**
 * The routing DAG drawn with three.js: an imperative scene (update / resize / dispose) that knows
 * nothing of React or the store. Chunks are boxes on the timeline (dag-layout.ts); routed edges
 * hang below the video row as arcs from the query chunk to the key chunk, as wide and as opaque
 * as the share of queries that took them, coloured by the head that routed most of them;
 * mandatory links, on demand, arc above. Hovering (or focusing) a chunk lights its outgoing (teal)
 * and incoming (pink) routes; a pinned chunk is outlined.
 *
 * Every chunk also has a focusable button over its box (no pointer events: the canvas hit-tests
 * the mouse), so the keyboard can walk the chunks (arrow keys) and pin one (Enter). The wheel
 * zooms about the cursor, a drag pans; `zoomBy` and `resetView` do the same from buttons.
 *
 * Renders on demand (after update, resize, zoom or pan), never in a loop.
 */
import * as THREE from 'three';
import { CAPTION_H, VIDEO_H, hitTest, type DagEdge, type DagLayout, type NodeBox } from './dag-layout.ts';
import { headColor, placeLabels, shotLabels } from './labels.ts';

/** Font size of the labels over the canvas (px), as styles.css sets `.routing-label`. */
export const LABEL_PX = 12;
const MAX_ZOOM = 40;

export interface RoutingView {
  layout: DagLayout;
  edges: DagEdge[];
  mandatory: Array<{ from: number; to: number }>;
  hovered: number | null;
  pinned: number | null;
  /** Shot label text per shot index (e.g. "Shot 2"). */
  shotLabel(shot: number): string;
  /** The name of chunk i (chunk-names.ts), for its button. */
  chunkLabel(chunk: number): string;
}

export interface SceneCallbacks {
  onHover(chunk: number | null): void;
  onClick(chunk: number | null): void;
}

const OUT = new THREE.Color('#5eead4');
const IN = new THREE.Color('#f0abfc');
const TEXT = new THREE.Color('#fbbf24');
const MAND = new THREE.Color('#9aa4b8');

/** A distinct colour per shot. */
export function shotColor(shot: number): THREE.Color {
  return new THREE.Color().setHSL((((shot * 0.161 + 0.55) % 1) + 1) % 1, 0.55, 0.55);
}

export class RoutingScene {
  private readonly renderer: THREE.WebGLRenderer;
  private readonly scene = new THREE.Scene();
  private readonly camera = new THREE.OrthographicCamera(0, 1, 1, 0, -10, 10);
  private readonly content = new THREE.Group();
  private readonly labels: HTMLDivElement;
  private readonly buttons: HTMLDivElement;
  private chunkButtons: HTMLButtonElement[] = [];
  private buttonsFor: DagLayout | null = null;
  private view: RoutingView | null = null;
  private width = 1;
  private height = 1;
  /** Zoom (1: the whole graph fits) and pan (world units from the fitted centre). */
  private zoom = 1;
  private panX = 0;
  private panY = 0;
  private drag: { x: number; y: number; moved: boolean } | null = null;
  private suppressClick = false;

  /** @throws Error when the browser gives no WebGL context (the caller shows a fallback). */
  constructor(
    container: HTMLElement,
    private readonly callbacks: SceneCallbacks,
  ) {
    this.renderer = new THREE.WebGLRenderer({ antialias: true, alpha: true });
    this.renderer.setPixelRatio(Math.min(2, globalThis.devicePixelRatio || 1));
    this.renderer.setClearColor(0x000000, 0);
    const canvas = this.renderer.domElement;
    canvas.className = 'routing-canvas';
    canvas.setAttribute('aria-hidden', 'true');
    this.labels = document.createElement('div');
    this.labels.className = 'routing-labels';
    this.buttons = document.createElement('div');
    this.buttons.className = 'routing-chunks';
    this.buttons.setAttribute('role', 'group');
    this.buttons.setAttribute('aria-label', 'Chunks: arrow keys move, Enter pins or unpins, Escape unpins');
    this.buttons.addEventListener('keydown', this.onKeyDown);
    container.append(canvas, this.labels, this.buttons);
    this.scene.add(this.content);
    canvas.addEventListener('pointermove', this.onPointerMove);
    canvas.addEventListener('pointerleave', this.onPointerLeave);
    canvas.addEventListener('pointerdown', this.onPointerDown);
    canvas.addEventListener('pointerup', this.onPointerUp);
    canvas.addEventListener('click', this.onClickCanvas);
    canvas.addEventListener('wheel', this.onWheel, { passive: false });
  }

  /** Zooms about the centre of the canvas by `factor` (> 1 in). */
  zoomBy(factor: number): void {
    this.zoomAt(this.width / 2, this.height / 2, factor);
  }

  /** Back to the whole graph in view. */
  resetView(): void {
    this.zoom = 1;
    this.panX = 0;
    this.panY = 0;
    this.afterViewChange();
  }

  /** The zoom factor now (1: all in view). */
  get zoomLevel(): number {
    return this.zoom;
  }

  update(view: RoutingView): void {
    if (this.view && view.layout.bounds !== this.view.layout.bounds && !sameBounds(view.layout, this.view.layout)) {
      this.zoom = 1;
      this.panX = 0;
      this.panY = 0;
    }
    this.view = view;
    this.fitCamera();
    this.rebuild();
    this.render();
  }

  resize(width: number, height: number): void {
    this.width = Math.max(1, width);
    this.height = Math.max(1, height);
    this.renderer.setSize(this.width, this.height, false);
    this.renderer.domElement.style.width = `${this.width}px`;
    this.renderer.domElement.style.height = `${this.height}px`;
    this.fitCamera();
    this.placeLabels();
    this.render();
  }

  dispose(): void {
    const canvas = this.renderer.domElement;
    canvas.removeEventListener('pointermove', this.onPointerMove);
    canvas.removeEventListener('pointerleave', this.onPointerLeave);
    canvas.removeEventListener('click', this.onClickCanvas);
    canvas.removeEventListener('pointerdown', this.onPointerDown);
    canvas.removeEventListener('pointerup', this.onPointerUp);
    canvas.removeEventListener('wheel', this.onWheel);
    this.buttons.removeEventListener('keydown', this.onKeyDown);
    this.clear();
    this.renderer.dispose();
    canvas.remove();
    this.labels.remove();
    this.buttons.remove();
  }

  // ── drawing ───────────────────────────────────────────────────────────────────────────────

  private render(): void {
    this.renderer.render(this.scene, this.camera);
  }

  /** Fits the layout's bounds into the canvas with a margin, keeping world units square. */
  private fitCamera(): void {
    const b = this.view?.layout.bounds ?? { x0: 0, x1: 1, y0: -1, y1: 1 };
    const padX = 0.6;
    const padY = 0.5;
    const w = b.x1 - b.x0 + 2 * padX;
    const h = b.y1 - b.y0 + 2 * padY + 0.6; // room for shot labels under the video row
    const scale = Math.max(w / this.width, h / this.height) / this.zoom;
    const cx = (b.x0 + b.x1) / 2 + this.panX;
    const cy = (b.y0 + b.y1) / 2 - 0.3 + this.panY;
    this.camera.left = cx - (this.width * scale) / 2;
    this.camera.right = cx + (this.width * scale) / 2;
    this.camera.top = cy + (this.height * scale) / 2;
    this.camera.bottom = cy - (this.height * scale) / 2;
    this.camera.updateProjectionMatrix();
  }

  private clear(): void {
    for (const obj of [...this.content.children]) {
      this.content.remove(obj);
      const m = obj as THREE.Mesh | THREE.LineSegments;
      m.geometry?.dispose();
      (m.material as THREE.Material | undefined)?.dispose();
    }
  }

  private rebuild(): void {
    this.clear();
    const v = this.view;
    if (!v) return;
    const focus = v.hovered ?? v.pinned;
    const connected = new Set<number>();
    if (focus !== null) {
      connected.add(focus);
      for (const e of v.edges) {
        if (e.from === focus) connected.add(e.to);
        if (e.to === focus) connected.add(e.from);
      }
    }
    this.addBands(v);
    this.addEdges(v, focus);
    if (v.mandatory.length) this.addMandatory(v, focus);
    this.addNodes(v, focus, connected);
    this.placeLabels();
  }

  private addBands(v: RoutingView): void {
    for (const s of v.layout.shots) {
      const c = shotColor(s.shot);
      this.content.add(rect(s.x0 - 0.15, -0.15, s.x1 - s.x0 + 0.3, VIDEO_H + 0.3, c, 0.08, -0.5));
    }
  }

  private addNodes(v: RoutingView, focus: number | null, connected: Set<number>): void {
    for (const n of v.layout.nodes) {
      const base = n.kind === 'text' ? TEXT : shotColor(n.shot);
      const dim = focus !== null && !connected.has(n.index);
      if (n.index === v.pinned)
        this.content.add(rect(n.x - 0.06, n.y - 0.06, n.w + 0.12, n.h + 0.12, new THREE.Color('#ffffff'), 0.95, 0.1));
      const gap = n.kind === 'video' ? 0.06 : 0;
      const c = n.index === v.hovered ? base.clone().lerp(new THREE.Color('#ffffff'), 0.35) : base;
      this.content.add(rect(n.x + gap / 2, n.y, n.w - gap, n.h, c, dim ? 0.25 : 0.92, 0.2));
    }
  }

  private addEdges(v: RoutingView, focus: number | null): void {
    const pos: number[] = [];
    const col: number[] = [];
    const idx: number[] = [];
    // light edges first, so heavy and highlighted ones are drawn on top
    const ordered = [...v.edges].sort((a, b) => rankOf(a, focus) - rankOf(b, focus) || a.weight - b.weight);
    for (const e of ordered) {
      const a = v.layout.nodes[e.from];
      const b = v.layout.nodes[e.to];
      if (!a || !b) continue;
      let color = headColors(e.head);
      let alpha = 0.16 + 0.6 * e.weight;
      if (focus !== null) {
        if (e.from === focus) [color, alpha] = [OUT, 0.35 + 0.65 * e.weight];
        else if (e.to === focus) [color, alpha] = [IN, 0.35 + 0.65 * e.weight];
        else alpha = 0.04;
      }
      ribbon(pos, col, idx, anchor(a, 'bottom'), anchor(b, 'bottom'), 0.03 + 0.2 * e.weight, color, alpha, -1);
    }
    if (!idx.length) return;
    this.content.add(mesh(pos, col, idx, 0));
  }

  private addMandatory(v: RoutingView, focus: number | null): void {
    const pts: number[] = [];
    const list = focus !== null ? v.mandatory.filter((e) => e.from === focus) : v.mandatory;
    for (const e of list) {
      const a = v.layout.nodes[e.from];
      const b = v.layout.nodes[e.to];
      if (!a || !b) continue;
      const p0 = anchor(a, 'top');
      const p1 = b.kind === 'text' ? anchor(b, 'bottom') : anchor(b, 'top');
      const curve = arc(p0, p1, +1, 0.04); // flat: the links must stay between the two rows
      const s = curve.getPoints(12);
      for (let i = 0; i < s.length - 1; i++) pts.push(s[i].x, s[i].y, 0.05, s[i + 1].x, s[i + 1].y, 0.05);
    }
    const g = new THREE.BufferGeometry();
    g.setAttribute('position', new THREE.Float32BufferAttribute(pts, 3));
    const m = new THREE.LineBasicMaterial({
      color: MAND,
      transparent: true,
      opacity: focus !== null ? 0.7 : 0.18,
      depthWrite: false,
    });
    this.content.add(new THREE.LineSegments(g, m));
  }

  /**
   * Shot labels between the rows and the global caption's label, as DOM text over the canvas:
   * "Shot 12" where every one fits, else the shot numbers that fit without overlapping (labels.ts),
   * never cut at the canvas edge. Then the chunk buttons, over their boxes.
   */
  private placeLabels(): void {
    const v = this.view;
    this.labels.replaceChildren();
    this.placeButtons();
    if (!v) return;
    const y = this.toScreen(0, VIDEO_H + 0.12).y; // between the caption and video rows
    const bands = v.layout.shots.map((s) => {
      const long = v.shotLabel(s.shot);
      return { x0: this.toScreen(s.x0, 0).x, x1: this.toScreen(s.x1, 0).x, long, short: long.replace(/^Shot /, '') };
    });
    for (const p of shotLabels(bands, LABEL_PX, 2, this.width - 2)) {
      const shot = v.layout.shots[p.index].shot;
      this.labels.append(label(p.text, p.left, y, `#${shotColor(shot).getHexString()}`, v.shotLabel(shot)));
    }
    const g = v.layout.nodes.find((n) => n.kind === 'text' && n.shot < 0);
    if (g) {
      const at = this.toScreen(g.x + g.w / 2, g.y + CAPTION_H + 0.05);
      const [p] =
        at.x >= 0 && at.x <= this.width
          ? placeLabels([{ at: at.x, text: 'captions' }], LABEL_PX, 2, this.width - 2)
          : [];
      if (p)
        this.labels.append(
          label(
            p.text,
            p.left,
            at.y,
            null,
            'The caption row: the global caption, then each shot’s caption above its frames',
          ),
        );
    }
  }

  /** One focusable button per chunk over its box (made again when the layout changes, else moved). */
  private placeButtons(): void {
    const v = this.view;
    if (!v || v.layout !== this.buttonsFor) {
      const had = this.buttons.contains(document.activeElement)
        ? Number((document.activeElement as HTMLElement).dataset.chunk)
        : null;
      this.buttons.replaceChildren();
      this.chunkButtons = [];
      this.buttonsFor = v?.layout ?? null;
      for (const n of v?.layout.nodes ?? []) {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'routing-chunk';
        b.dataset.chunk = String(n.index);
        b.addEventListener('click', () => this.callbacks.onClick(n.index));
        b.addEventListener('focus', () => this.callbacks.onHover(n.index));
        b.addEventListener('blur', () => {
          if (this.view?.hovered === n.index) this.callbacks.onHover(null);
        });
        this.chunkButtons[n.index] = b;
        this.buttons.append(b);
      }
      if (had !== null) this.chunkButtons[had]?.focus();
    }
    if (!v) return;
    const active = v.pinned ?? v.hovered ?? 0;
    for (const n of v.layout.nodes) {
      const b = this.chunkButtons[n.index];
      const p0 = this.toScreen(n.x, n.y + n.h);
      const p1 = this.toScreen(n.x + n.w, n.y);
      b.style.left = `${p0.x}px`;
      b.style.top = `${p0.y}px`;
      b.style.width = `${Math.max(2, p1.x - p0.x)}px`;
      b.style.height = `${Math.max(2, p1.y - p0.y)}px`;
      b.tabIndex = n.index === active ? 0 : -1;
      b.setAttribute('aria-label', v.chunkLabel(n.index));
      b.setAttribute('aria-pressed', String(n.index === v.pinned));
    }
  }

  private zoomAt(sx: number, sy: number, factor: number): void {
    const before = this.toWorldLocal(sx, sy);
    this.zoom = Math.min(MAX_ZOOM, Math.max(1, this.zoom * factor));
    this.fitCamera();
    const after = this.toWorldLocal(sx, sy);
    this.panX += before.x - after.x;
    this.panY += before.y - after.y;
    if (this.zoom === 1) [this.panX, this.panY] = [0, 0];
    this.afterViewChange();
  }

  private afterViewChange(): void {
    this.fitCamera();
    this.placeLabels();
    this.render();
  }

  // ── input ─────────────────────────────────────────────────────────────────────────────────

  private toWorld(clientX: number, clientY: number): { x: number; y: number } {
    const r = this.renderer.domElement.getBoundingClientRect();
    return this.toWorldLocal(((clientX - r.left) / r.width) * this.width, ((clientY - r.top) / r.height) * this.height);
  }

  /** World point under canvas pixel (sx, sy). */
  private toWorldLocal(sx: number, sy: number): { x: number; y: number } {
    const u = sx / this.width;
    const w = sy / this.height;
    return {
      x: this.camera.left + u * (this.camera.right - this.camera.left),
      y: this.camera.top - w * (this.camera.top - this.camera.bottom),
    };
  }

  private toScreen(x: number, y: number): { x: number; y: number } {
    const u = (x - this.camera.left) / (this.camera.right - this.camera.left);
    const w = (this.camera.top - y) / (this.camera.top - this.camera.bottom);
    return { x: u * this.width, y: w * this.height };
  }

  private readonly onPointerMove = (e: PointerEvent): void => {
    if (!this.view) return;
    if (this.drag && e.buttons & 1) {
      const dx = e.clientX - this.drag.x;
      const dy = e.clientY - this.drag.y;
      if (!this.drag.moved && Math.hypot(dx, dy) < 4) return;
      this.drag = { x: e.clientX, y: e.clientY, moved: true };
      const perPx = (this.camera.right - this.camera.left) / this.width;
      this.panX -= dx * perPx;
      this.panY += dy * perPx;
      this.renderer.domElement.style.cursor = 'grabbing';
      this.afterViewChange();
      return;
    }
    const p = this.toWorld(e.clientX, e.clientY);
    const hit = hitTest(this.view.layout, p.x, p.y);
    this.renderer.domElement.style.cursor = hit === null ? 'default' : 'pointer';
    if (hit !== this.view.hovered) this.callbacks.onHover(hit);
  };

  private readonly onPointerLeave = (): void => {
    if (this.view?.hovered !== null) this.callbacks.onHover(null);
  };

  private readonly onPointerDown = (e: PointerEvent): void => {
    if (e.button !== 0) return;
    this.drag = { x: e.clientX, y: e.clientY, moved: false };
  };

  private readonly onPointerUp = (): void => {
    this.suppressClick = this.drag?.moved ?? false;
    this.drag = null;
  };

  private readonly onWheel = (e: WheelEvent): void => {
    e.preventDefault();
    const r = this.renderer.domElement.getBoundingClientRect();
    this.zoomAt(e.clientX - r.left, e.clientY - r.top, Math.exp(-e.deltaY * 0.0015));
  };

  /** Arrow keys walk the chunks in stream order, Home / End jump, Escape unpins; Enter is the button's click. */
  private readonly onKeyDown = (e: KeyboardEvent): void => {
    const v = this.view;
    const at = Number((e.target as HTMLElement).dataset.chunk);
    if (!v || !Number.isInteger(at)) return;
    const C = v.layout.nodes.length;
    const to = { ArrowRight: at + 1, ArrowDown: at + 1, ArrowLeft: at - 1, ArrowUp: at - 1, Home: 0, End: C - 1 }[
      e.key
    ];
    if (e.key === 'Escape' && v.pinned !== null) {
      e.preventDefault();
      this.callbacks.onClick(null);
    } else if (to !== undefined) {
      e.preventDefault();
      this.chunkButtons[Math.min(C - 1, Math.max(0, to))]?.focus();
    }
  };

  private readonly onClickCanvas = (e: MouseEvent): void => {
    if (!this.view) return;
    if (this.suppressClick) {
      this.suppressClick = false;
      return; // the end of a drag, not a click
    }
    const p = this.toWorld(e.clientX, e.clientY);
    this.callbacks.onClick(hitTest(this.view.layout, p.x, p.y));
  };
}

/** A label over the canvas at (left, y): y is its baseline's bottom (styles.css lifts it by its height). */
function label(text: string, left: number, y: number, color: string | null, title: string): HTMLSpanElement {
  const el = document.createElement('span');
  el.className = 'routing-label';
  el.textContent = text;
  el.title = title;
  el.style.left = `${left}px`;
  el.style.top = `${y}px`;
  if (color) el.style.color = color;
  return el;
}

const headColorCache: THREE.Color[] = [];
function headColors(h: number): THREE.Color {
  return (headColorCache[h] ??= new THREE.Color().setStyle(headColor(Math.max(0, h))));
}

function sameBounds(a: DagLayout, b: DagLayout): boolean {
  return a.bounds.x0 === b.bounds.x0 && a.bounds.x1 === b.bounds.x1 && a.nodes.length === b.nodes.length;
}

function rankOf(e: DagEdge, focus: number | null): number {
  return focus !== null && (e.from === focus || e.to === focus) ? 1 : 0;
}

function anchor(n: NodeBox, side: 'top' | 'bottom'): THREE.Vector2 {
  return new THREE.Vector2(n.x + n.w / 2, side === 'top' ? n.y + n.h : n.y);
}

/** A quadratic arc from p0 to p1 bulging down (dir −1) or up (+1), deeper for longer spans. */
function arc(p0: THREE.Vector2, p1: THREE.Vector2, dir: number, depth = 0.3): THREE.QuadraticBezierCurve {
  const span = Math.abs(p1.x - p0.x);
  const mid = new THREE.Vector2(
    (p0.x + p1.x) / 2,
    (dir < 0 ? Math.min(p0.y, p1.y) : Math.max(p0.y, p1.y)) + dir * (0.25 + span * depth),
  );
  return new THREE.QuadraticBezierCurve(p0, mid, p1);
}

/** Appends a ribbon of `width` along an arc (triangle strip as indexed triangles), RGBA per vertex. */
function ribbon(
  pos: number[],
  col: number[],
  idx: number[],
  p0: THREE.Vector2,
  p1: THREE.Vector2,
  width: number,
  c: THREE.Color,
  alpha: number,
  dir: number,
): void {
  const pts = arc(p0, p1, dir).getPoints(20);
  const base = pos.length / 3;
  for (let i = 0; i < pts.length; i++) {
    const prev = pts[Math.max(0, i - 1)];
    const next = pts[Math.min(pts.length - 1, i + 1)];
    const t = new THREE.Vector2(next.x - prev.x, next.y - prev.y).normalize();
    const nx = -t.y * (width / 2);
    const ny = t.x * (width / 2);
    // taper towards the key chunk end, so the direction reads at a glance
    const k = 1 - 0.6 * (i / (pts.length - 1));
    pos.push(pts[i].x + nx * k, pts[i].y + ny * k, 0, pts[i].x - nx * k, pts[i].y - ny * k, 0);
    col.push(c.r, c.g, c.b, alpha, c.r, c.g, c.b, alpha);
    if (i > 0) {
      const a = base + (i - 1) * 2;
      idx.push(a, a + 1, a + 2, a + 1, a + 3, a + 2);
    }
  }
}

function mesh(pos: number[], col: number[], idx: number[], z: number): THREE.Mesh {
  const g = new THREE.BufferGeometry();
  g.setAttribute('position', new THREE.Float32BufferAttribute(pos, 3));
  g.setAttribute('color', new THREE.Float32BufferAttribute(col, 4));
  g.setIndex(idx);
  const m = new THREE.MeshBasicMaterial({
    vertexColors: true,
    transparent: true,
    side: THREE.DoubleSide,
    depthWrite: false,
    depthTest: false,
  });
  const out = new THREE.Mesh(g, m);
  out.position.z = z;
  return out;
}

function rect(x: number, y: number, w: number, h: number, c: THREE.Color, alpha: number, z: number): THREE.Mesh {
  const g = new THREE.PlaneGeometry(Math.max(0.001, w), Math.max(0.001, h));
  const m = new THREE.MeshBasicMaterial({
    color: c,
    transparent: alpha < 1,
    opacity: alpha,
    depthWrite: false,
    depthTest: false,
  });
  const out = new THREE.Mesh(g, m);
  out.position.set(x + w / 2, y + h / 2, z);
  out.renderOrder = z * 10;
  return out;
}

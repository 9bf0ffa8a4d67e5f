/**
 * The routing DAG drawn with three.js: an imperative scene (update / resize / dispose) that knows
 * nothing of React or the store. Chunks are boxes on the timeline (dag-layout.ts); routed edges
 * hang below the video row as arcs from the query chunk to the key chunk, as wide and as opaque
 * as the share of queries that took them; mandatory links, on demand, arc above. Hovering a
 * chunk lights its outgoing (teal) and incoming (pink) routes; a pinned chunk is outlined.
 *
 * Renders on demand (after update or resize), never in a loop.
 */
import * as THREE from 'three';
import { CAPTION_H, VIDEO_H, hitTest, type DagEdge, type DagLayout, type NodeBox } from './dag-layout.ts';

export interface RoutingView {
  layout: DagLayout;
  edges: DagEdge[];
  mandatory: Array<{ from: number; to: number }>;
  hovered: number | null;
  pinned: number | null;
  /** Shot label text per shot index (e.g. "Shot 2"). */
  shotLabel(shot: number): string;
}

export interface SceneCallbacks {
  onHover(chunk: number | null): void;
  onClick(chunk: number | null): void;
}

const OUT = new THREE.Color('#5eead4');
const IN = new THREE.Color('#f0abfc');
const EDGE = new THREE.Color('#8b9bff');
const TEXT = new THREE.Color('#fbbf24');
const MAND = new THREE.Color('#9aa4b8');

/** A distinct colour per shot. */
export function shotColor(shot: number): THREE.Color {
  return new THREE.Color().setHSL(((shot * 0.161 + 0.55) % 1 + 1) % 1, 0.55, 0.55);
}

export class RoutingScene {
  private readonly renderer: THREE.WebGLRenderer;
  private readonly scene = new THREE.Scene();
  private readonly camera = new THREE.OrthographicCamera(0, 1, 1, 0, -10, 10);
  private readonly content = new THREE.Group();
  private readonly labels: HTMLDivElement;
  private view: RoutingView | null = null;
  private width = 1;
  private height = 1;

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
    container.append(canvas, this.labels);
    this.scene.add(this.content);
    canvas.addEventListener('pointermove', this.onPointerMove);
    canvas.addEventListener('pointerleave', this.onPointerLeave);
    canvas.addEventListener('click', this.onClickCanvas);
  }

  update(view: RoutingView): void {
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
    this.clear();
    this.renderer.dispose();
    canvas.remove();
    this.labels.remove();
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
    const scale = Math.max(w / this.width, h / this.height);
    const cx = (b.x0 + b.x1) / 2;
    const cy = (b.y0 + b.y1) / 2 - 0.3;
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
      if (n.index === v.pinned) this.content.add(rect(n.x - 0.06, n.y - 0.06, n.w + 0.12, n.h + 0.12, new THREE.Color('#ffffff'), 0.95, 0.1));
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
      let color = EDGE;
      let alpha = 0.12 + 0.6 * e.weight;
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
    const m = new THREE.LineBasicMaterial({ color: MAND, transparent: true, opacity: focus !== null ? 0.7 : 0.18, depthWrite: false });
    this.content.add(new THREE.LineSegments(g, m));
  }

  /** Shot labels under the bands, as DOM text over the canvas. */
  private placeLabels(): void {
    const v = this.view;
    this.labels.replaceChildren();
    if (!v) return;
    for (const s of v.layout.shots) {
      const p = this.toScreen((s.x0 + s.x1) / 2, VIDEO_H + 0.12); // between the caption and video rows
      const el = document.createElement('span');
      el.className = 'routing-label';
      el.textContent = v.shotLabel(s.shot);
      el.style.left = `${p.x}px`;
      el.style.top = `${p.y}px`;
      el.style.color = `#${shotColor(s.shot).getHexString()}`;
      this.labels.append(el);
    }
    const g = v.layout.nodes.find((n) => n.kind === 'text' && n.shot < 0);
    if (g) {
      const p = this.toScreen(g.x + g.w / 2, g.y + CAPTION_H + 0.05);
      const el = document.createElement('span');
      el.className = 'routing-label';
      el.textContent = 'captions';
      el.style.left = `${p.x}px`;
      el.style.top = `${p.y}px`;
      this.labels.append(el);
    }
  }

  // ── input ─────────────────────────────────────────────────────────────────────────────────

  private toWorld(clientX: number, clientY: number): { x: number; y: number } {
    const r = this.renderer.domElement.getBoundingClientRect();
    const u = (clientX - r.left) / r.width;
    const w = (clientY - r.top) / r.height;
    return { x: this.camera.left + u * (this.camera.right - this.camera.left), y: this.camera.top - w * (this.camera.top - this.camera.bottom) };
  }

  private toScreen(x: number, y: number): { x: number; y: number } {
    const u = (x - this.camera.left) / (this.camera.right - this.camera.left);
    const w = (this.camera.top - y) / (this.camera.top - this.camera.bottom);
    return { x: u * this.width, y: w * this.height };
  }

  private readonly onPointerMove = (e: PointerEvent): void => {
    if (!this.view) return;
    const p = this.toWorld(e.clientX, e.clientY);
    const hit = hitTest(this.view.layout, p.x, p.y);
    this.renderer.domElement.style.cursor = hit === null ? 'default' : 'pointer';
    if (hit !== this.view.hovered) this.callbacks.onHover(hit);
  };

  private readonly onPointerLeave = (): void => {
    if (this.view?.hovered !== null) this.callbacks.onHover(null);
  };

  private readonly onClickCanvas = (e: MouseEvent): void => {
    if (!this.view) return;
    const p = this.toWorld(e.clientX, e.clientY);
    this.callbacks.onClick(hitTest(this.view.layout, p.x, p.y));
  };
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
  const mid = new THREE.Vector2((p0.x + p1.x) / 2, (dir < 0 ? Math.min(p0.y, p1.y) : Math.max(p0.y, p1.y)) + dir * (0.25 + span * depth));
  return new THREE.QuadraticBezierCurve(p0, mid, p1);
}

/** Appends a ribbon of `width` along an arc (triangle strip as indexed triangles), RGBA per vertex. */
function ribbon(pos: number[], col: number[], idx: number[], p0: THREE.Vector2, p1: THREE.Vector2, width: number, c: THREE.Color, alpha: number, dir: number): void {
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
  const m = new THREE.MeshBasicMaterial({ vertexColors: true, transparent: true, side: THREE.DoubleSide, depthWrite: false, depthTest: false });
  const out = new THREE.Mesh(g, m);
  out.position.z = z;
  return out;
}

function rect(x: number, y: number, w: number, h: number, c: THREE.Color, alpha: number, z: number): THREE.Mesh {
  const g = new THREE.PlaneGeometry(Math.max(0.001, w), Math.max(0.001, h));
  const m = new THREE.MeshBasicMaterial({ color: c, transparent: alpha < 1, opacity: alpha, depthWrite: false, depthTest: false });
  const out = new THREE.Mesh(g, m);
  out.position.set(x + w / 2, y + h / 2, z);
  out.renderOrder = z * 10;
  return out;
}

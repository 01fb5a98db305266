/** Light/dark theme: follows the system until the user picks one (kept in localStorage). */
import { useSyncExternalStore } from 'react';

export type Theme = 'light' | 'dark';
const KEY = 'prescient-theme';
const listeners = new Set<() => void>();

function systemTheme(): Theme {
  return window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

function stored(): Theme | null {
  try {
    const v = localStorage.getItem(KEY);
    return v === 'light' || v === 'dark' ? v : null;
  } catch {
    return null;
  }
}

let current: Theme = 'light';

export function initTheme() {
  current = stored() ?? systemTheme();
  document.documentElement.dataset.theme = current;
  window.matchMedia?.('(prefers-color-scheme: dark)').addEventListener('change', () => {
    if (!stored()) setTheme(systemTheme(), false);
  });
}

export function setTheme(t: Theme, remember = true) {
  current = t;
  document.documentElement.dataset.theme = t;
  if (remember) {
    try {
      localStorage.setItem(KEY, t);
    } catch {
      /* private mode */
    }
  }
  listeners.forEach((f) => f());
}

export function useTheme(): Theme {
  return useSyncExternalStore(
    (f) => {
      listeners.add(f);
      return () => listeners.delete(f);
    },
    () => current,
  );
}

/** The current value of a CSS custom property on <html>. */
export function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888888';
}

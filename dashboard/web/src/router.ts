/** A tiny history router: the URL is the state (see lib/time.ts). */
import { useSyncExternalStore } from 'react';
import { parseLocation, routeUrl, type Route } from './lib/time';

const listeners = new Set<() => void>();
let snapshot = '';

function key() {
  return location.pathname + location.search;
}

window.addEventListener('popstate', () => listeners.forEach((f) => f()));

export function navigate(to: Route | string, replace = false) {
  const url = typeof to === 'string' ? to : routeUrl(to);
  if (url === key()) return;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  listeners.forEach((f) => f());
  if (!replace) window.scrollTo(0, 0);
}

let cached: Route = parseLocation(location.pathname, location.search);

export function useRoute(): Route {
  return useSyncExternalStore(
    (f) => {
      listeners.add(f);
      return () => listeners.delete(f);
    },
    () => {
      const k = key();
      if (k !== snapshot) {
        snapshot = k;
        cached = parseLocation(location.pathname, location.search);
      }
      return cached;
    },
  );
}

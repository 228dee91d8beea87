// Loads the <toolgate-playground> component once per page: the module built by
// `npm run build:web`, copied to <base>live/ by the docs build. Every live
// example on a page (and on the pages the reader moves to, without a reload)
// shares this one module, so the WebAssembly core is fetched and instantiated
// once.
import { withBase } from 'vitepress';

export const playgroundUrl = () => withBase('/live/toolgate-playground.js');

let loading = null;

export function loadPlayground() {
  loading ??= import(/* @vite-ignore */ playgroundUrl())
    .then((module) => {
      // Start fetching and compiling the core now, not when the first example
      // is created: the components share this one instance.
      module.sharedToolgate?.().catch(() => {}); // a failure is shown by the component itself
      return customElements.whenDefined('toolgate-playground');
    })
    .catch((error) => {
      loading = null;
      throw error;
    });
  return loading;
}

// On a page that has live examples (the build adds a modulepreload link for the
// component to those pages), start loading while the page is still hydrating.
export function preloadPlaygroundIfNeeded() {
  if (typeof document === 'undefined') return;
  if (document.querySelector('link[rel="modulepreload"][href$="/live/toolgate-playground.js"]')) {
    loadPlayground().catch(() => {}); // the examples report it when they mount
  }
}

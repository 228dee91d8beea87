// The default VitePress theme, plus the live examples and the window diagram.
import DefaultTheme from 'vitepress/theme';
import FullPlayground from './FullPlayground.vue';
import LiveExample from './LiveExample.vue';
import WindowDiagram from './WindowDiagram.vue';
import { preloadPlaygroundIfNeeded } from './playground-loader.js';
import './style.css';

export default {
  extends: DefaultTheme,
  enhanceApp({ app }) {
    app.component('FullPlayground', FullPlayground);
    app.component('LiveExample', LiveExample);
    app.component('WindowDiagram', WindowDiagram);
    if (!import.meta.env.SSR) preloadPlaygroundIfNeeded();
  },
};

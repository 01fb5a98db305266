import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { prefetch } from './lib/api';
import { initTheme } from './theme';
import './styles.css';

// The session and, on the overview, its data are fetched while React starts.
prefetch(location.pathname === '/' ? ['/me', '/overview'] : ['/me']);
initTheme();
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);

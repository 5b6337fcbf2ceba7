import { render } from 'preact';

render(<p>Agent Immune dashboard (under construction)</p>, document.getElementById('app')!);

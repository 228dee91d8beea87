// embed.html: logs the components' `decision` events (as text).
const list = document.getElementById('events');
document.addEventListener('decision', (event) => {
  const source = event.target?.getAttribute?.('preset') ?? 'playground';
  const { decision, code, rule } = event.detail;
  const item = document.createElement('li');
  item.textContent = `${source}: ${decision} (${code}) ${rule}`;
  list.prepend(item);
  while (list.children.length > 20) list.lastElementChild.remove();
});

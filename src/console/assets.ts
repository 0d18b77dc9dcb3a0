/**
 * The console's stylesheet and its one optional script, served by the console itself (no external
 * network). The script only enhances: it refreshes the parts of a page marked `data-refresh` (a
 * running batch's progress) by fetching the same page again; without JavaScript the page has a
 * "Refresh" link and shows the same numbers.
 */
export const CONSOLE_CSS = `
:root { --fg:#1d2330; --muted:#667085; --line:#d9dee7; --bg:#f6f7f9; --accent:#1f5fbf;
  --ok:#147a3d; --bad:#b42318; --warn:#a15c07; --info:#175cd3; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color:var(--fg); background:var(--bg); }
header { background:#111827; color:#fff; padding:0 24px; display:flex; align-items:center; gap:28px; }
header .brand { font-weight:600; padding:12px 0; }
header nav a { color:#cbd5e1; text-decoration:none; padding:14px 10px; display:inline-block; }
header nav a.on, header nav a:hover { color:#fff; box-shadow: inset 0 -3px 0 #60a5fa; }
header .who { margin-left:auto; color:#94a3b8; font-size:12px; }
main { padding:20px 24px 40px; max-width:1280px; }
h1 { font-size:20px; margin:4px 0 16px; } h2 { font-size:16px; margin:24px 0 8px; }
a { color:var(--accent); }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#eef1f5; font-weight:600; font-size:12px; color:#344054; }
td.num, th.num { text-align:right; font-variant-numeric: tabular-nums; }
.money { font-variant-numeric: tabular-nums; white-space:nowrap; }
.money abbr { text-decoration:none; color:var(--muted); font-size:12px; }
.muted { color:var(--muted); }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; background:#e4e7ec; white-space:nowrap; }
.state-succeeded, .state-completed, .state-active { background:#d1fadf; color:var(--ok); }
.state-failed, .state-canceled, .state-past_due { background:#fee4e2; color:var(--bad); }
.state-needs_review, .state-unknown, .state-awaiting_approval, .state-paused { background:#fef0c7; color:var(--warn); }
.state-pending, .state-queued, .state-submitting, .state-requires_action, .state-ingesting, .state-trialing { background:#d1e9ff; color:var(--info); }
.state-reversed { background:#f4ebff; color:#6941c6; }
form.filters { display:flex; flex-wrap:wrap; gap:8px 12px; align-items:end; background:#fff;
  border:1px solid var(--line); padding:12px; margin-bottom:16px; }
form.filters label, form.action label { display:flex; flex-direction:column; font-size:12px; color:#344054; gap:2px; }
input, select, textarea, button { font:inherit; }
input, select, textarea { padding:5px 8px; border:1px solid #c3c9d4; border-radius:4px; background:#fff; }
button, .button { padding:6px 14px; border-radius:4px; border:1px solid var(--accent); background:var(--accent);
  color:#fff; cursor:pointer; text-decoration:none; display:inline-block; }
button.secondary, .button.secondary { background:#fff; color:var(--accent); }
button.danger { background:var(--bad); border-color:var(--bad); }
.flash { padding:10px 14px; border-radius:4px; margin-bottom:16px; border:1px solid; }
.flash.ok { background:#ecfdf3; border-color:#a6f4c5; color:var(--ok); }
.flash.error { background:#fef3f2; border-color:#fecdca; color:var(--bad); }
dl.facts { display:grid; grid-template-columns: max-content 1fr; gap:4px 16px; background:#fff;
  border:1px solid var(--line); padding:12px 16px; margin:0; }
dl.facts dt { color:var(--muted); } dl.facts dd { margin:0; overflow-wrap:anywhere; }
.cards { display:grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap:10px; margin-bottom:12px; }
.card { background:#fff; border:1px solid var(--line); padding:10px 14px; }
.card .n { font-size:22px; font-weight:600; font-variant-numeric: tabular-nums; }
.card .l { font-size:12px; color:var(--muted); }
.card.failed .n { color:var(--bad); } .card.succeeded .n { color:var(--ok); }
.actions { display:flex; flex-wrap:wrap; gap:12px; margin:12px 0; align-items:flex-start; }
form.action { background:#fff; border:1px solid var(--line); padding:10px 12px; display:flex; flex-direction:column; gap:8px; max-width:680px; }
form.action button { align-self:flex-start; }
form.action label.check { flex-direction:row; align-items:center; gap:6px; font-size:14px; }
form.action fieldset { border:1px solid var(--line); display:flex; gap:18px; padding:6px 12px 10px; margin:0; }
form.action textarea { width:100%; }
.pager { margin-top:10px; display:flex; gap:12px; }
ol.timeline { list-style:none; padding:0; margin:0; background:#fff; border:1px solid var(--line); }
ol.timeline li { padding:8px 12px; border-bottom:1px solid var(--line); display:grid; grid-template-columns: 180px 1fr; gap:12px; }
ol.timeline .resolution { margin-top:4px; padding:6px 8px; background:#f9fafb; border-left:3px solid var(--warn); }
.progress { width:100%; height:10px; background:#e4e7ec; border-radius:5px; display:block; margin:8px 0 14px; }
.progress .ok { fill:#32d583; } .progress .bad { fill:#f97066; } .progress .wait { fill:#fdb022; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size:12px; }
`;

export const CONSOLE_JS = `
(function () {
  var parts = document.querySelectorAll('[data-refresh]');
  if (parts.length === 0) return;
  var every = 1000;
  function tick() {
    fetch(location.href, { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (text === null) return;
        var doc = new DOMParser().parseFromString(text, 'text/html');
        var live = false;
        document.querySelectorAll('[data-refresh]').forEach(function (el) {
          var fresh = el.id ? doc.getElementById(el.id) : null;
          if (!fresh) return;
          el.replaceWith(document.importNode(fresh, true));
          if (fresh.getAttribute('data-refresh') === 'live') live = true;
        });
        if (live) setTimeout(tick, every);
      })
      .catch(function () { setTimeout(tick, every * 5); });
  }
  var anyLive = false;
  parts.forEach(function (el) { if (el.getAttribute('data-refresh') === 'live') anyLive = true; });
  if (anyLive) setTimeout(tick, every);
})();
`;

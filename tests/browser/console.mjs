// The web console in a real browser: Debian's Chromium, headless, driven by playwright-core.
// Run by tests/browser.rs, which starts the server, seeds it and passes everything in env:
//   JT_BASE            the server's base URL
//   JT_ADMIN_TOKEN     the admin token (for the admin API checks, and the admin's sign-in)
//   JT_RUNNER_JOB      a job no token was minted for yet, for the runner the admin creates
//   JT_MAINTAINER_PAT  a Maintainer's PAT (Maintainer of group JT_GROUP, so of JT_PROJECT)
//   JT_DEVELOPER_PAT   a Developer's PAT (Developer of JT_PROJECT)
//   JT_REVOKED_PAT     another PAT of the Maintainer, revoked by the session check
//   JT_REVOKE_PATH     its admin API path (DELETE)
//   JT_PROJECT, JT_PROJECT_ID, JT_GROUP     the page under test and its group
//   JT_SOURCE_GROUP, JT_SOURCE_PROJECT      the group admitted and a project in it
//   JT_JOB_TOKEN       a job token of JT_SOURCE_PROJECT, for the token inspector
//   JT_SCREENSHOTS     where to save the screenshots
//   JT_CHROMIUM        the browser binary (default /usr/bin/chromium)
//   JT_ONLY            (optional, for development) run only the checks whose name contains it
// Each scenario is one named check; the script prints `ok - <check>` or `FAIL - <check>: why` and
// exits 1 when any failed.
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const env = (name) => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set`);
    return value;
};
const BASE = env("JT_BASE");
const PROJECT = env("JT_PROJECT");
const PROJECT_ID = env("JT_PROJECT_ID");
const GROUP = env("JT_GROUP");
const SOURCE_GROUP = env("JT_SOURCE_GROUP");
const SOURCE_PROJECT = env("JT_SOURCE_PROJECT");
const SHOTS = env("JT_SCREENSHOTS");
const PROJECT_PAGE = `${BASE}/ui/projects/${PROJECT}`;
const GROUP_PAGE = `${BASE}/ui/groups/${GROUP}`;
const GRANTED = ["read_registry", "read_api"];
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
mkdirSync(SHOTS, { recursive: true });

class CheckFailed extends Error {}
function expect(condition, message) {
    if (!condition) throw new CheckFailed(message);
}

/// The admin API, from node (the console's CSP lets no page script call anything).
async function admin(method, path) {
    const res = await fetch(`${BASE}${path}`, {
        method,
        headers: { Authorization: `Bearer ${env("JT_ADMIN_TOKEN")}` },
    });
    const text = await res.text();
    expect(res.ok, `${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
}

/// What a form post could change: the project's settings and both allowlists.
async function projectState() {
    const scope = `/api/v1/projects/${PROJECT_ID}/job_token_scope`;
    return JSON.stringify({
        settings: await admin("GET", scope),
        groups: await admin("GET", `${scope}/groups_allowlist`),
        projects: await admin("GET", `${scope}/allowlist`),
    });
}

const browser = await chromium.launch({
    executablePath: process.env.JT_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // Chromium's sandbox refuses to run as root (CI containers).
    args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
});

/// A fresh browser profile (own cookies) that enforces the console's CSP; any CSP violation or
/// page error fails the check that opened it.
async function freshContext(options = {}) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
    // Generous: in `cargo test` the browser shares two cores with every other suite.
    context.setDefaultTimeout(30_000);
    context.problems = [];
    context.on("page", (page) => watch(context, page));
    return context;
}

function watch(context, page) {
    page.on("console", (msg) => {
        if (msg.type() === "error" && /Content Security Policy/i.test(msg.text())) {
            context.problems.push(`CSP violation on ${page.url()}: ${msg.text()}`);
        }
    });
    page.on("pageerror", (e) => context.problems.push(`page error on ${page.url()}: ${e}`));
}

async function signIn(page, token) {
    await page.goto(`${BASE}/ui/login`);
    await page.getByLabel("Personal access token").fill(token);
    await Promise.all([page.waitForURL(`${BASE}/ui/`), page.getByRole("button", { name: "Sign in" }).click()]);
}

/// Asks the page's "Why?" panel; returns { verdict: "Allowed" | "Denied", reason }.
async function askWhy(page, source, scope) {
    await page.locator("#why-source").fill(source);
    await page.locator("#why-scope").selectOption(scope);
    // The answer is a new page (the form posts): wait for that navigation, never read the last one.
    const [response] = await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Ask" }).click()]);
    expect(response.status() === 200, `the Why? answer: ${response.status()}`);
    expect((await page.locator("#why-scope").inputValue()) === scope, `the answer is about ${scope}`);
    const answer = page.locator("#why-answer");
    const verdict = (await answer.locator("p.allowed, p.denied").first().innerText()).trim();
    const reason = (await answer.locator("p").nth(1).innerText()).trim();
    return { verdict, reason };
}

/// Submits the page's form `selector` after `tamper([selector, arg])` ran in the page; returns
/// the status of the response the browser navigated to.
async function submitForm(page, selector, tamper, arg = null) {
    await page.evaluate(tamper, [selector, arg]);
    const [response] = await Promise.all([
        page.waitForNavigation(),
        page.evaluate((sel) => document.querySelector(sel).submit(), selector),
    ]);
    return response.status();
}

const results = [];
async function check(name, body) {
    if (process.env.JT_ONLY && !name.includes(process.env.JT_ONLY)) return;
    const started = Date.now();
    const context = await freshContext();
    try {
        await body(context);
        expect(context.problems.length === 0, context.problems.join("\n"));
        results.push({ name, ok: true });
        console.log(`ok - ${name} (${Date.now() - started} ms)`);
    } catch (e) {
        results.push({ name, ok: false });
        console.log(`FAIL - ${name}: ${e instanceof CheckFailed ? e.message : e.stack}`);
    } finally {
        await context.close();
    }
}

await check("a Maintainer admits a group for two scopes and the Why? panel flips from denied to allowed", async (context) => {
    const page = await context.newPage();
    await signIn(page, env("JT_MAINTAINER_PAT"));
    await Promise.all([page.waitForURL(PROJECT_PAGE), page.getByRole("link", { name: PROJECT, exact: true }).click()]);
    expect((await page.locator("h1").innerText()).includes(PROJECT), "the project page's heading names the project");
    expect((await page.locator(".counter").innerText()).includes("Groups: 0/200"), "no group entry yet");

    const allScopes = await page.locator("#why-scope option").evaluateAll((os) => os.map((o) => o.value));
    expect(GRANTED.every((s) => allScopes.includes(s)), `the Why? panel offers ${GRANTED}: ${allScopes}`);
    for (const scope of GRANTED) {
        const before = await askWhy(page, SOURCE_PROJECT, scope);
        expect(before.verdict === "Denied", `before: ${scope} must be denied: ${JSON.stringify(before)}`);
        expect(before.reason.includes(SOURCE_PROJECT), `a denial gives its reason: ${before.reason}`);
        console.log(`  before: ${scope}: ${before.verdict}: ${before.reason}`);
    }
    await page.locator("section[aria-labelledby=why]").screenshot({ path: join(SHOTS, "why-denied.png") });

    // The allowlist's "Add a project or group" form, as a person fills it in.
    await page.getByLabel("Kind", { exact: true }).selectOption("group");
    await page.getByLabel("Full path", { exact: true }).fill(SOURCE_GROUP);
    for (const scope of GRANTED) await page.locator(`#add-${scope}`).check();
    await Promise.all([page.waitForURL(PROJECT_PAGE), page.getByRole("button", { name: "Add", exact: true }).click()]);
    const flash = await page.locator(".flash").innerText();
    expect(flash.includes(`Added ${SOURCE_GROUP}.`), `the flash message: ${flash}`);
    expect((await page.locator(".counter").innerText()).includes("Groups: 1/200"), "one group entry now");
    const groups = await admin("GET", `/api/v1/projects/${PROJECT_ID}/job_token_scope/groups_allowlist`);
    expect(groups.length === 1, `one entry in the API: ${JSON.stringify(groups)}`);
    expect(
        JSON.stringify([...groups[0].scopes].sort()) === JSON.stringify([...GRANTED].sort()),
        `the entry grants exactly ${GRANTED}: ${JSON.stringify(groups[0])}`,
    );
    await page.screenshot({ path: join(SHOTS, "project-page.png"), fullPage: true });

    for (const scope of GRANTED) {
        const after = await askWhy(page, SOURCE_PROJECT, scope);
        expect(after.verdict === "Allowed", `after: ${scope} must be allowed: ${JSON.stringify(after)}`);
        console.log(`  after: ${scope}: ${after.verdict}: ${after.reason}`);
    }
    await page.locator("section[aria-labelledby=why]").screenshot({ path: join(SHOTS, "why-allowed.png") });
    await page.screenshot({ path: join(SHOTS, "why-allowed-page.png"), fullPage: true });
    // The panel keeps the question it answered.
    expect((await page.locator("#why-source").inputValue()) === SOURCE_PROJECT, "the source stays filled in");
    for (const scope of allScopes.filter((s) => !GRANTED.includes(s))) {
        const other = await askWhy(page, SOURCE_PROJECT, scope);
        expect(other.verdict === "Denied", `${scope} was not granted and must stay denied: ${JSON.stringify(other)}`);
    }
});

await check("the project page fits a phone-width screen", async (context) => {
    const page = await context.newPage();
    await page.setViewportSize({ width: 390, height: 844 });
    await signIn(page, env("JT_MAINTAINER_PAT"));
    await page.goto(PROJECT_PAGE);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow <= 0, `the page scrolls sideways by ${overflow}px at 390px wide`);
    await page.screenshot({ path: join(SHOTS, "project-page-phone.png"), fullPage: true });
});

await check("a Developer cannot change anything", async (context) => {
    const page = await context.newPage();
    await signIn(page, env("JT_DEVELOPER_PAT"));
    const before = await projectState();
    const shown = await page.goto(PROJECT_PAGE);
    expect([200, 403].includes(shown.status()), `the project page for a Developer: ${shown.status()}`);
    // Whatever the page shows, no control of a state-changing form is usable (sign-out and the
    // Why? question change nothing).
    const usable = await page.locator("form[method=post]").evaluateAll((forms) =>
        forms
            .filter((f) => !/\/ui\/logout$|\/-\/why$/.test(f.action))
            .flatMap((f) => [...f.elements])
            .filter((e) => e.type !== "hidden" && !e.disabled)
            .map((e) => `${e.form.action} ${e.name || e.textContent}`),
    );
    expect(usable.length === 0, `a Developer has usable controls: ${usable}`);

    // A forged form, as a page script or a crafted form would post it, with this session's CSRF
    // token: refused by the server.
    for (const [action, fields] of [
        ["add", { kind: "group", path: SOURCE_GROUP, default: "on" }],
        ["inbound", { inbound: "off" }],
        ["scopes", { scope: "api" }],
    ]) {
        const status = await submitForm(page, "#forged", ([, [url, fields]]) => {
            const form = document.createElement("form");
            form.id = "forged";
            form.method = "post";
            form.action = url;
            const csrf = document.querySelector("input[name=csrf]").value;
            for (const [name, value] of Object.entries({ csrf, ...fields })) {
                const input = document.createElement("input");
                Object.assign(input, { type: "hidden", name, value });
                form.append(input);
            }
            document.body.append(form);
        }, [`${PROJECT_PAGE}/-/${action}`, fields]);
        expect(status === 403, `a Developer's forged ${action} post: ${status}, expected 403`);
        await page.goto(PROJECT_PAGE);
    }
    expect((await projectState()) === before, "the Developer's posts changed nothing");
});

await check("a form posted without its CSRF token is refused and changes nothing", async (context) => {
    const page = await context.newPage();
    await signIn(page, env("JT_MAINTAINER_PAT"));
    await page.goto(PROJECT_PAGE);
    const before = await projectState();
    const add = `form[action$="/-/add"]`;
    await page.getByLabel("Kind", { exact: true }).selectOption("project");
    await page.getByLabel("Full path", { exact: true }).fill(SOURCE_PROJECT);
    await page.locator("#add-default").check();
    const status = await submitForm(page, add, ([sel]) => document.querySelector(`${sel} input[name=csrf]`).remove());
    expect(status === 403, `a post without its CSRF token: ${status}, expected 403`);
    const inbound = `form[action$="/-/inbound"]`;
    await page.goto(PROJECT_PAGE);
    await page.locator("#inbound-off").check();
    const status2 = await submitForm(page, inbound, ([sel]) => {
        document.querySelector(`${sel} input[name=csrf]`).value = "not-the-token";
    });
    expect(status2 === 403, `a post with a wrong CSRF token: ${status2}, expected 403`);
    expect((await projectState()) === before, "the refused posts changed nothing");
});

await check("a session dies when its PAT is revoked", async (context) => {
    const page = await context.newPage();
    await signIn(page, env("JT_REVOKED_PAT"));
    const open = await page.goto(PROJECT_PAGE);
    expect(open.status() === 200, `the project page before the revocation: ${open.status()}`);
    await admin("DELETE", env("JT_REVOKE_PATH"));
    await page.reload();
    expect(page.url() === `${BASE}/ui/login`, `after the revocation, a reload lands on ${page.url()}`);
    await page.getByLabel("Personal access token").waitFor();
    const again = await page.goto(PROJECT_PAGE);
    expect(page.url() === `${BASE}/ui/login`, `the dead session opens nothing (${again.status()} ${page.url()})`);
});

const ADMIN_PAGES = [
    ["Keys", "/ui/admin/keys", "Signing keys"],
    ["Settings", "/ui/admin/settings", "Instance settings"],
    ["Audit", "/ui/admin/audit", "Audit events"],
    ["Runners", "/ui/admin/runners", "Runners"],
    ["Resource servers", "/ui/admin/resource_servers", "Resource servers"],
];

/// The audit page's rows: [when, actor, action, target] of each.
async function auditRows(page) {
    return page.locator("main tbody tr").evaluateAll((rows) =>
        rows.map((r) => [...r.cells].slice(0, 4).map((c) => c.innerText.trim())),
    );
}

/// `POST /oauth/token` from node as the runner `id:secret`, for the job `JT_RUNNER_JOB`.
async function mintAs(id, secret) {
    const res = await fetch(`${BASE}/oauth/token`, {
        method: "POST",
        headers: {
            Authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`,
            "Content-Type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams({ grant_type: "client_credentials", job_id: env("JT_RUNNER_JOB") }),
    });
    return { status: res.status, body: await res.json() };
}

await check("the admin signs in and uses every admin page: keys, settings, audit, runners, resource servers", async (context) => {
    const page = await context.newPage();
    await signIn(page, env("JT_ADMIN_TOKEN"));
    // Every admin page is in the admin's navigation.
    for (const [label, path, heading] of ADMIN_PAGES) {
        await Promise.all([
            page.waitForURL(`${BASE}${path}`),
            page.getByRole("navigation", { name: "Console" }).getByRole("link", { name: label, exact: true }).click(),
        ]);
        const h1 = (await page.locator("h1").innerText()).trim();
        expect(h1 === heading, `the ${label} page's heading: ${h1}`);
    }

    // Rotating the job keys, refused by the guard while the next key is young: the page says why, nothing changes.
    await page.goto(`${BASE}/ui/admin/keys`);
    const keysBefore = JSON.stringify(await admin("GET", "/api/v1/keys"));
    const [rotated] = await Promise.all([
        page.waitForNavigation(),
        page.getByRole("button", { name: "Rotate the job keys now" }).click(),
    ]);
    expect(rotated.status() === 409, `a rotation the guard refuses: ${rotated.status()}, expected 409`);
    const reason = (await page.locator("main p.error[role=alert]").innerText()).trim();
    expect(reason.includes("verifiers may cache the JWKS"), `the guard's reason is shown: ${reason}`);
    expect(JSON.stringify(await admin("GET", "/api/v1/keys")) === keysBefore, "the refused rotation changed no key");
    await page.screenshot({ path: join(SHOTS, "admin-keys.png"), fullPage: true });

    // The audit trail, filtered (the seeding made more than a page of user events), then page 2.
    await page.goto(`${BASE}/ui/admin/audit`);
    await page.getByLabel("Target type").fill("user");
    await Promise.all([page.waitForURL(/target_type=user/), page.getByRole("button", { name: "Filter" }).click()]);
    const first = await auditRows(page);
    expect(first.length === 20, `page 1 of the user events has 20 rows: ${first.length}`);
    const total = Number((await page.locator("main p.muted").first().innerText()).match(/^(\d+) events/)?.[1]);
    const users = await admin("GET", "/api/v1/audit_events?target_type=user&per_page=100");
    expect(total === users.length && total > 20, `the page counts ${total} user events, the API ${users.length}`);
    await Promise.all([page.waitForURL(/page=2/), page.getByRole("link", { name: "Next" }).click()]);
    expect(page.url().includes("target_type=user"), `page 2 keeps the filter: ${page.url()}`);
    expect((await page.getByLabel("Target type").inputValue()) === "user", "the filter stays filled in on page 2");
    const second = await auditRows(page);
    expect(second.length === total - 20, `page 2 has the other ${total - 20} rows: ${second.length}`);
    const all = [...first, ...second];
    expect(all.every((r) => r[3].startsWith("user")), `only user events: ${JSON.stringify(all.filter((r) => !r[3].startsWith("user")))}`);
    expect(new Set(all.map((r) => r.join("|"))).size === all.length, "page 2 repeats nothing of page 1");

    // A runner registered in the browser: its secret is shown once, and it authenticates.
    await page.goto(`${BASE}/ui/admin/runners`);
    const runnersBefore = (await admin("GET", "/api/v1/runners?per_page=100")).length;
    await page.getByLabel("Type").selectOption("instance");
    await page.getByLabel("Description").fill("registered in the browser");
    const [created] = await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Register" }).click()]);
    expect(created.status() === 200, `registering a runner: ${created.status()}`);
    const clientId = (await page.locator("#client-id").innerText()).trim();
    const secret = (await page.locator("#client-secret").innerText()).trim();
    expect(clientId && secret.length > 20, `the new runner's credentials are shown: ${clientId}`);
    // A reload of this page re-posts the form: refused (its one-time id is used), nothing registered.
    const reloaded = await page.reload();
    expect(reloaded.status() === 409, `a reload of the secret's page: ${reloaded.status()}, expected 409`);
    expect(!(await page.content()).includes(secret), "the secret is shown again after a reload");
    const resent = (await page.locator("main p.error[role=alert]").innerText()).trim();
    expect(resent.includes("already sent"), `the reload says why nothing happened: ${resent}`);
    const wrong = await mintAs(clientId, `${secret}x`);
    expect(wrong.status === 401, `a wrong secret: ${wrong.status} ${JSON.stringify(wrong.body)}`);
    const minted = await mintAs(clientId, secret);
    expect(minted.status === 200 && minted.body.access_token, `the shown secret mints: ${minted.status} ${JSON.stringify(minted.body)}`);
    // Not shown again: not in the list, not after going back to it.
    await page.goto(`${BASE}/ui/admin/runners`);
    expect((await page.content()).includes(clientId), "the list shows the new runner");
    expect(!(await page.content()).includes(secret), "the secret is shown again in the list");
    await page.goBack().catch(() => null);
    expect(!(await page.content().catch(() => "")).includes(secret), `the secret is shown again after going back (${page.url()})`);
    const runnersAfter = (await admin("GET", "/api/v1/runners?per_page=100")).length;
    expect(runnersAfter === runnersBefore + 1, `exactly one runner registered: ${runnersBefore} -> ${runnersAfter}`);
});

/// The focused element: what it is, whether it is on screen, and its focus ring (outline width
/// and the outline's contrast with the background behind it).
async function focused(page) {
    return page.evaluate(() => {
        const e = document.activeElement;
        const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
        const lum = ([r, g, b]) => {
            const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
            return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
        };
        // The ring is drawn outside the element (outline-offset): behind it is the parent's background.
        let behind = "rgb(255, 255, 255)";
        for (let n = e.parentElement; n; n = n.parentElement) {
            const c = getComputedStyle(n).backgroundColor;
            if (rgb(c).length === 3 || rgb(c)[3] > 0) { behind = c; break; }
        }
        const style = getComputedStyle(e);
        const [a, b] = [lum(rgb(style.outlineColor)), lum(rgb(behind))];
        const rect = e.getBoundingClientRect();
        return {
            what: `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""} ${(e.textContent || e.name || "").trim().slice(0, 30)}`,
            id: e.id,
            text: (e.textContent || "").trim(),
            onScreen: rect.width > 0 && rect.left >= 0 && rect.top >= 0 && rect.right <= window.innerWidth,
            ring: style.outlineStyle === "none" ? 0 : parseFloat(style.outlineWidth),
            contrast: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05),
        };
    });
}

await check("keyboard users see where the focus is and sign in and reach the project without a mouse", async (context) => {
    const page = await context.newPage();
    await page.goto(`${BASE}/ui/login`);
    await page.keyboard.press("Tab");
    const skip = await focused(page);
    expect(skip.text === "Skip to content" && skip.onScreen, `the first Tab shows the skip link: ${JSON.stringify(skip)}`);
    const ring = (f) =>
        expect(f.ring >= 2 && f.contrast >= 3, `the focus ring of ${f.what}: ${f.ring}px, contrast ${f.contrast.toFixed(2)}:1`);
    ring(skip);
    let field = skip;
    for (let i = 0; i < 4 && field.id !== "token"; i++) {
        await page.keyboard.press("Tab");
        field = await focused(page);
        ring(field);
    }
    expect(field.id === "token", `Tab reaches the token field: ${JSON.stringify(field)}`);
    await page.keyboard.type(env("JT_MAINTAINER_PAT"));
    await Promise.all([page.waitForURL(`${BASE}/ui/`), page.keyboard.press("Enter")]);
    await page.goto(PROJECT_PAGE);
    // The first controls of the project page, header included: each shows a ring of at least
    // 2px with a contrast of at least 3:1 (WCAG 2.4.7, 1.4.11).
    const seen = [];
    for (let i = 0; i < 12; i++) {
        await page.keyboard.press("Tab");
        const f = await focused(page);
        seen.push(f.what);
        ring(f);
    }
    expect(seen.some((w) => w.includes("Save setting")), `Tab reaches the settings form: ${seen.join(" | ")}`);
});

let checkedPages = 0;

/// axe-core on a page: its serious and critical violations (the others are printed as notes).
async function axe(page, label) {
    await page.addScriptTag({ content: AXE_SOURCE });
    checkedPages += 1;
    const found = await page.evaluate(async () => {
        const r = await window.axe.run(document, { resultTypes: ["violations"] });
        return r.violations.map((v) => ({
            id: v.id,
            impact: v.impact,
            help: v.help,
            nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary.replace(/\s+/g, " ")}`),
        }));
    });
    const bad = found.filter((v) => v.impact === "serious" || v.impact === "critical");
    for (const v of found) {
        const line = `  axe ${label}: ${v.impact} ${v.id} (${v.help})\n${v.nodes.map((n) => `      ${n}`).join("\n")}`;
        console.log(bad.includes(v) ? line : line.replace("  axe", "  axe note"));
    }
    return bad.map((v) => `${label}: ${v.impact} ${v.id}: ${v.help} (${v.nodes.length} elements)`);
}

await check("every page passes axe-core with no serious or critical violation", async () => {
    // Only this context bypasses the CSP, to inject axe-core; the other checks run under it.
    const context = await freshContext({ bypassCSP: true });
    const page = await context.newPage();
    const bad = [];
    try {
        await page.goto(`${BASE}/ui/login`);
        bad.push(...(await axe(page, "login")));
        // The check can fail: an unlabelled field planted on the page is reported.
        await page.evaluate(() => document.querySelector("main").append(document.createElement("input")));
        const planted = await axe(page, "login with a planted unlabelled field (expected)");
        expect(planted.some((v) => v.includes("critical label")), `axe-core missed the planted field: ${planted}`);
        checkedPages -= 1;
        await signIn(page, env("JT_MAINTAINER_PAT"));
        bad.push(...(await axe(page, "home")));
        await page.goto(PROJECT_PAGE);
        bad.push(...(await axe(page, "project page")));
        await askWhy(page, SOURCE_PROJECT, "read_api");
        bad.push(...(await axe(page, "Why? answer")));
        await page.goto(GROUP_PAGE);
        bad.push(...(await axe(page, "group page")));
        await page.goto(`${BASE}/ui/tokens`);
        bad.push(...(await axe(page, "token inspector")));
        await page.getByLabel("Job token").fill(env("JT_JOB_TOKEN"));
        await page.getByLabel("Target project").fill(PROJECT);
        await page.getByLabel("Scope on the target").selectOption("read_api");
        await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Inspect" }).click()]);
        const refused = await page.locator("p.error").allInnerTexts();
        expect(refused.length === 0, `the token inspector refused the job token: ${refused}`);
        bad.push(...(await axe(page, "token inspector result")));
        await page.setViewportSize({ width: 390, height: 844 });
        await page.goto(PROJECT_PAGE);
        bad.push(...(await axe(page, "project page at 390x844")));
        await page.setViewportSize({ width: 1280, height: 900 });
        await Promise.all([page.waitForURL(`${BASE}/ui/login`), page.getByRole("button", { name: "Sign out" }).click()]);
        await signIn(page, env("JT_DEVELOPER_PAT"));
        await page.goto(PROJECT_PAGE);
        bad.push(...(await axe(page, "project page for a Developer")));
        await Promise.all([page.waitForURL(`${BASE}/ui/login`), page.getByRole("button", { name: "Sign out" }).click()]);
        await signIn(page, env("JT_ADMIN_TOKEN"));
        bad.push(...(await axe(page, "home for the admin")));
        for (const [label, path] of ADMIN_PAGES) {
            await page.goto(`${BASE}${path}`);
            bad.push(...(await axe(page, `admin ${label}`)));
        }
        await page.goto(`${BASE}/ui/admin/keys`);
        await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Rotate the job keys now" }).click()]);
        bad.push(...(await axe(page, "admin Keys with the guard's refusal")));
        await page.goto(`${BASE}/ui/admin/audit?target_type=user&page=2`);
        expect((await auditRows(page)).length > 0, "page 2 of the user events has rows");
        bad.push(...(await axe(page, "admin Audit, filtered, page 2")));
        await page.goto(`${BASE}/ui/admin/resource_servers`);
        await page.getByLabel("Name").fill("registry in the browser");
        await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Register" }).click()]);
        expect((await page.locator("#client-secret").count()) === 1, "the new resource server's secret page");
        bad.push(...(await axe(page, "admin secret shown once")));
        await page.goto(`${BASE}/ui/admin/resource_servers`);
        bad.push(...(await axe(page, "admin Resource servers with one registered")));
    } finally {
        await context.close();
    }
    console.log(`  axe-core checked ${checkedPages} pages`);
    expect(bad.length === 0, `accessibility violations:\n  ${bad.join("\n  ")}`);
});

await browser.close();
const failed = results.filter((r) => !r.ok);
console.log(`${results.length - failed.length}/${results.length} browser checks passed`);
process.exit(failed.length ? 1 : 0);

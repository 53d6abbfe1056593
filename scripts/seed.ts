/**
 * The demo catalogue, seeded through the API (idempotent PUTs): two features, four plans and one
 * demo account per plan.
 */
const HOUR = 3600;
const WEEK = 7 * 24 * HOUR;

export const DEMO_FEATURES = {
  'codex.task': { unit: 'task', credits_per_unit: '2.5' },
  'sora.video.seconds': { unit: 'second', credits_per_unit: '0.4' },
};

const plan = (codex: [number, number, number], sora: [number, number, number], overage: 'credits' | 'deny') => ({
  features: {
    'codex.task': {
      windows: [
        { name: '5h', limit: codex[0], seconds: 5 * HOUR },
        { name: 'weekly', limit: codex[1], seconds: WEEK },
      ],
      free_tier: { units_per_month: codex[2] },
      overage,
    },
    'sora.video.seconds': {
      windows: [
        { name: '1h', limit: sora[0], seconds: HOUR },
        { name: 'weekly', limit: sora[1], seconds: WEEK },
      ],
      free_tier: { units_per_month: sora[2] },
      overage,
    },
  },
});

export const DEMO_PLANS = {
  free: plan([10, 40, 20], [30, 120, 60], 'deny'),
  plus: plan([50, 200, 100], [300, 1200, 600], 'credits'),
  pro: plan([200, 1000, 500], [1200, 6000, 3000], 'credits'),
  enterprise: plan([1000, 10000, 0], [6000, 60000, 0], 'credits'),
};

export async function seedDemoCatalogue(api: string, adminKey: string): Promise<void> {
  const put = async (path: string, body: unknown) => {
    const response = await fetch(`${api}${path}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`seeding ${path} failed: ${response.status} ${await response.text()}`);
  };
  for (const [key, feature] of Object.entries(DEMO_FEATURES)) await put(`/v1/features/${key}`, feature);
  for (const [key, body] of Object.entries(DEMO_PLANS)) await put(`/v1/plans/${key}`, body);
  for (const key of Object.keys(DEMO_PLANS)) await put(`/v1/accounts/demo_${key}`, { plan: key });
}

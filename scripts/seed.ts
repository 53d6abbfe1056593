/** The demo catalogue: placeholder until the catalogue endpoints exist. */
export async function seedDemoCatalogue(_api: string, _adminKey: string): Promise<void> {}

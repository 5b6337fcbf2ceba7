// Placeholder until the CLI lands; replaced in the same session.
console.log('immune: CLI under construction');

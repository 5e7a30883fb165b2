// The dashboard's script and style are built into the binary as text (`with { type: "text" }`).
declare module "*.css" {
  const text: string;
  export default text;
}
declare module "*.mjs" {
  const text: string;
  export default text;
}

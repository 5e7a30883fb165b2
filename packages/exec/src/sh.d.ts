// Worker-side shell scripts are imported as text (`with { type: "text" }`).
declare module "*.sh" {
  const text: string;
  export default text;
}
